// The portal's few scripts, kept out of the pages: the Content-Security-Policy runs no inline
// handler and no eval (so no htmx trigger filter either).

// <form data-confirm="..."> asks before it submits. When the value is the id of a <dialog>
// (Apply and Run: what they destroy), that dialog opens instead and its own form posts
// confirm=1; without dialog support the post goes out and the server answers with the
// confirmation as a page. Any other value is a question for window.confirm.
document.addEventListener("submit", (event) => {
  const value = event.target.dataset && event.target.dataset.confirm;
  if (!value) return;
  const dialog = document.getElementById(value);
  if (dialog && dialog.tagName === "DIALOG") {
    if (typeof dialog.showModal !== "function") return;
    event.preventDefault();
    dialog.showModal();
  } else if (!window.confirm(value)) {
    event.preventDefault();
  }
});

// An element polling with hx-trigger="every Ns" and an id:
//   data-poll-hidden="S"    while the page is hidden, polls every S seconds instead (0: not at all);
//   data-poll-pause=".sel"  skips a poll while the focus is inside an element matching .sel.
const lastPolled = new Map();
document.addEventListener("htmx:beforeRequest", (event) => {
  const elt = event.detail.elt;
  if (!elt.hasAttribute("data-poll-hidden")) return;
  const pause = elt.dataset.pollPause;
  const now = Date.now();
  const hiddenEvery = Number(elt.dataset.pollHidden) * 1000;
  const due = !document.hidden || (hiddenEvery > 0 && now - (lastPolled.get(elt.id) ?? 0) >= hiddenEvery);
  if (!due || (pause && document.activeElement?.closest(pause))) {
    event.preventDefault();
    return;
  }
  lastPolled.set(elt.id, now);
});

// --- The component editor ---------------------------------------------------------------------

// A list edited as rows: "Add a row" appends a copy of the table's <template> row, its
// "__ID__" names made unique with the table's data-next-id.
function addRow(box) {
  const id = box.dataset.nextId;
  box.dataset.nextId = String(Number(id) + 1);
  const row = box.querySelector("template").content.firstElementChild.cloneNode(true);
  for (const el of row.querySelectorAll("[name]")) {
    el.name = el.name.replace("__ID__", id);
    if (el.value === "__ID__") el.value = id;
  }
  box.querySelector("tbody").append(row);
  row.querySelector("input:not([type=hidden]), select")?.focus();
}

// The subscription picker holds any number of rows: "Add another subscription" copies the
// last one, empty, with its ids and htmx target renumbered.
function addSubscriptionRow() {
  const box = document.getElementById("new-subs");
  const rows = box.querySelectorAll("[data-new-sub]");
  const n = String(rows.length);
  const row = rows[rows.length - 1].cloneNode(true);
  row.classList.remove("has-error");
  for (const el of row.querySelectorAll(".sub-errors")) el.remove();
  for (const el of row.querySelectorAll("[id], [for], [list], [hx-target]")) {
    for (const attr of ["id", "for", "hx-target"]) {
      if (el.hasAttribute(attr)) el.setAttribute(attr, el.getAttribute(attr).replace(/\d+$/, n));
    }
    if (el.hasAttribute("list") && /\d+$/.test(el.getAttribute("list"))) {
      el.setAttribute("list", el.getAttribute("list").replace(/\d+$/, n));
    }
  }
  for (const input of row.querySelectorAll("input")) input.value = "";
  for (const list of row.querySelectorAll("datalist")) list.replaceChildren();
  box.append(row);
  if (window.htmx) window.htmx.process(row);
  return row;
}

// A cell's ⇐ button: a picker row for that cell (the first empty one, or a new one).
function subscribe(path) {
  const empty = [...document.querySelectorAll("#new-subs [data-new-sub]")].find(
    (row) => !row.querySelector("[name=new_target]").value,
  );
  const row = empty || addSubscriptionRow();
  row.querySelector("[name=new_target]").value = path;
  row.scrollIntoView({ block: "center" });
  row.querySelector("[name=new_component]").focus();
}

document.addEventListener("click", (event) => {
  const add = event.target.closest("[data-add-row]");
  if (add) return addRow(document.getElementById(add.dataset.addRow));
  if (event.target.closest("[data-add-subscription]")) return addSubscriptionRow();
  const cell = event.target.closest("[data-subscribe]");
  if (cell) return subscribe(cell.dataset.subscribe);
  const jump = event.target.closest("[data-goto-line]");
  if (jump) return gotoLine(document.getElementById(jump.dataset.textarea), Number(jump.dataset.gotoLine), Number(jump.dataset.column));
});

// JSON textareas number their lines, so that "line 68, column 6" (or "(line 12)") in an error can be found;
// each such error gets a button that puts the cursor there.
function numberLines(textarea) {
  const gutter = document.createElement("div");
  gutter.className = "line-numbers";
  gutter.setAttribute("aria-hidden", "true");
  const wrap = document.createElement("div");
  wrap.className = "json-editor";
  textarea.before(wrap);
  wrap.append(gutter, textarea);
  let numbered = 0;
  const update = () => {
    const lines = textarea.value.split("\n").length;
    if (lines !== numbered) {
      gutter.textContent = Array.from({ length: lines }, (_, i) => i + 1).join("\n");
      numbered = lines;
    }
    gutter.scrollTop = textarea.scrollTop;
  };
  textarea.addEventListener("input", update);
  textarea.addEventListener("scroll", () => { gutter.scrollTop = textarea.scrollTop; });
  update();
  const field = textarea.closest(".field");
  for (const error of field ? field.querySelectorAll(".field-error") : []) {
    const at = /line (\d+)(?:, column (\d+))?/.exec(error.textContent);
    if (!at) continue;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "small secondary goto-line";
    button.textContent = `Go to line ${at[1]}`;
    button.dataset.gotoLine = at[1];
    button.dataset.column = at[2] || "1";
    button.dataset.textarea = textarea.id;
    error.append(" ", button);
  }
}

function gotoLine(textarea, line, column) {
  const lines = textarea.value.split("\n");
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
  offset += Math.max(0, column - 1);
  textarea.focus();
  textarea.setSelectionRange(offset, offset);
  const height = parseFloat(getComputedStyle(textarea).lineHeight) || 18;
  textarea.scrollTop = Math.max(0, (line - 3) * height);
}

for (const textarea of document.querySelectorAll("textarea.json-text")) numberLines(textarea);

// A <select data-shows-when-new="ID"> shows the element ID only while "new" is picked (the
// component page's "edit in a change set": a name for the change set it starts).
function showWhenNew(select) {
  const target = document.getElementById(select.dataset.showsWhenNew);
  if (target) target.hidden = select.value !== "new";
}
document.addEventListener("change", (event) => {
  if (event.target.matches("[data-shows-when-new]")) showWhenNew(event.target);
});
for (const select of document.querySelectorAll("[data-shows-when-new]")) showWhenNew(select);
