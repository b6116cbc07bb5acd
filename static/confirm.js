// Forms with data-confirm="<dialog id>" open that dialog instead of posting; the dialog's
// own form posts confirm=1. Without dialog support the post goes out and the server
// answers with the confirmation as a page.
document.addEventListener("submit", (event) => {
  const id = event.target.dataset && event.target.dataset.confirm;
  const dialog = id && document.getElementById(id);
  if (!dialog || typeof dialog.showModal !== "function") return;
  event.preventDefault();
  dialog.showModal();
});
