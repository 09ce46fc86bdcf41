// The mapping editor: every change of the rows answers with a "rows-changed" event (after the swap) that
// carries the spec's new revision. Every revision field on the page takes it, so that the
// user's next save is made at the revision their own last save produced (a change made by
// someone else in between still conflicts, as it must).
document.addEventListener("rows-changed", function (event) {
  var revision = event.detail && event.detail.revision;
  if (!revision) {
    return;
  }
  document.querySelectorAll("input[data-spec-revision]").forEach(function (input) {
    input.value = revision;
  });
  document.querySelectorAll("[data-revision-text]").forEach(function (element) {
    element.textContent = revision;
  });
});
