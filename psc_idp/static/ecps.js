// e-CPS login page: poll the request status and continue by itself once approved.
(function () {
  var status = document.getElementById("ecps-status");
  if (!status) return;
  var statusUrl = status.dataset.statusUrl, doneUrl = status.dataset.doneUrl;
  var deadline = Date.now() + (parseInt(status.dataset.seconds, 10) + 2) * 1000;
  function poll() {
    fetch(statusUrl, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (body.status === "pending" && Date.now() < deadline) {
          setTimeout(poll, 1000);
        } else {
          window.location.assign(doneUrl);
        }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 1000);
})();
