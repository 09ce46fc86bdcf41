// Data source form: shows the fields of the chosen kind only (data-kinds lists the kinds a
// field or fieldset belongs to). Without this script every field shows, and the server
// still says which ones a kind takes.
(function () {
  var select = document.querySelector("select[data-source-kind]");
  if (!select) {
    return;
  }
  function update() {
    var kind = select.value;
    document.querySelectorAll("#source-form [data-kinds]").forEach(function (element) {
      var kinds = element.getAttribute("data-kinds").split(" ");
      element.hidden = kinds.indexOf(kind) === -1;
    });
  }
  select.addEventListener("change", update);
  update();
})();
