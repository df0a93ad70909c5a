// e-CPS waiting page: a live countdown (mm:ss on screen; screen readers hear the time left
// politely every 30 seconds, not every second), and a poll of the request's status that
// continues by itself once the phone answered or the time is up.
(function () {
  var status = document.getElementById("ecps-status");
  if (!status) return;
  var statusUrl = status.dataset.statusUrl, doneUrl = status.dataset.doneUrl;
  var seconds = parseInt(status.dataset.seconds, 10) || 0;
  var deadline = Date.now() + seconds * 1000;
  var remaining = document.getElementById("ecps-remaining");
  var announce = document.getElementById("ecps-announce");
  var ANNOUNCE_EVERY = 30, lastAnnounced = null, finished = false;

  function left() { return Math.max(0, Math.round((deadline - Date.now()) / 1000)); }
  function mmss(s) { return Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2); }

  function finish() {
    if (finished) return;
    finished = true;
    window.location.assign(doneUrl);
  }

  function tick() {
    var s = left(), step = Math.ceil(s / ANNOUNCE_EVERY);
    if (remaining && remaining.textContent !== mmss(s)) {
      remaining.textContent = mmss(s);
      if (s <= 30) remaining.parentNode.classList.add("ecps-ending");
    }
    if (announce && s > 0 && step !== lastAnnounced) {  // at 1:30, 1:00, 0:30
      if (lastAnnounced !== null) announce.textContent = announce.dataset.leftText + " " + mmss(s);
      lastAnnounced = step;
    }
    if (s > 0) setTimeout(tick, 250);
  }

  function poll() {
    if (finished) return;
    fetch(statusUrl, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (body.status === "pending" && Date.now() < deadline + 2000) {
          setTimeout(poll, 1000);
        } else {
          finish();
        }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }

  // the cancel form leaves the page: stop polling so that it does not race the navigation
  var cancel = document.getElementById("ecps-cancel");
  if (cancel) cancel.addEventListener("submit", function () { finished = true; });

  tick();
  setTimeout(poll, 1000);
})();
