// The wrap-up form's "Follow-up wanted: Yes" offers the check-in form (bot/templates/console/_followups.html).
(function () {
  "use strict";
  var offer = document.querySelector(".checkin-offer");
  var form = document.getElementById("end");
  if (!offer || !form) return;
  var field = form.querySelector("[data-field=follow_up]");
  if (!field) return;
  var shown = offer.cloneNode(true);
  field.insertAdjacentElement("afterend", shown);
  function update() {
    var yes = form.querySelector("input[name=follow_up][value=yes]");
    shown.hidden = !(yes && yes.checked);
  }
  form.addEventListener("change", update);
  update();
})();
