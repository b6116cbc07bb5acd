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
