// The portal's few scripts, kept out of the pages: the Content-Security-Policy runs no inline
// handler and no eval (so no htmx trigger filter either).

// <form data-confirm="Abandon this change set?"> asks before it submits.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
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
