// The sandbox e-CPS phone (psc_idp/ecps/browser_phone.py): the phone app's API spoken as
// psc-ecps speaks it. The device key is a non-extractable WebCrypto P-256 key kept in
// IndexedDB (the CryptoKey itself); messages are JWS ES256, whose signature is the raw
// r||s that WebCrypto's ECDSA returns. The app PIN is checked locally (PBKDF2) before an
// approval; after MAX_PIN_ERRORS wrong PINs in a row the key is deleted.
(function () {
  "use strict";
  var root = document.getElementById("phone");
  if (!root) return;
  var issuer = root.dataset.issuer, wanted = root.dataset.wanted || "";
  var text = JSON.parse(root.dataset.messages);
  var MAX_PIN_ERRORS = 5, PBKDF2_ROUNDS = 200000;
  var status = document.getElementById("phone-status");
  var shown = {};        // request id -> its form
  var poller = null;     // AbortController of the poll under way
  var generation = 0;    // one poll loop at a time: a refresh starts a new one
  var firstAnswer = true;

  function say(message) { status.textContent = message; }
  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) { return values[name]; });
  }

  // --- encoding --------------------------------------------------------------------------
  function b64url(bytes) {
    var binary = "";
    new Uint8Array(bytes).forEach(function (b) { binary += String.fromCharCode(b); });
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function utf8(value) { return new TextEncoder().encode(value); }
  function randomText(size) { return b64url(crypto.getRandomValues(new Uint8Array(size))); }

  // --- the state in IndexedDB: {issuer, device_id, id_nat, label, key, pin, pin_errors} ---
  function store(mode, action) {
    return new Promise(function (resolve, reject) {
      var opening = indexedDB.open("psc-ecps-phone", 1);
      opening.onupgradeneeded = function () { opening.result.createObjectStore("devices"); };
      opening.onerror = function () { reject(opening.error); };
      opening.onsuccess = function () {
        var tx = opening.result.transaction("devices", mode);
        var done = action(tx.objectStore("devices"));
        tx.oncomplete = function () { resolve(done && done.result); opening.result.close(); };
        tx.onerror = function () { reject(tx.error); };
      };
    });
  }
  function load() { return store("readonly", function (s) { return s.get(issuer); }); }
  function save(state) { return store("readwrite", function (s) { s.put(state, issuer); }); }
  function forget() { return store("readwrite", function (s) { s.delete(issuer); }); }

  // --- the PIN ---------------------------------------------------------------------------
  function pinHash(pin, salt) {
    return crypto.subtle.importKey("raw", utf8(pin), "PBKDF2", false, ["deriveBits"])
      .then(function (material) {
        return crypto.subtle.deriveBits({name: "PBKDF2", hash: "SHA-256", salt: salt,
                                         iterations: PBKDF2_ROUNDS}, material, 256);
      })
      .then(b64url);
  }
  function checkPin(state, pin) {
    return pinHash(pin, state.pin.salt).then(function (hash) {
      if (hash === state.pin.hash) {
        state.pin_errors = 0;
        return save(state).then(function () { return true; });
      }
      state.pin_errors = (state.pin_errors || 0) + 1;
      if (state.pin_errors >= MAX_PIN_ERRORS) {
        return forget().then(function () { throw new Error(text.pin_wiped); });
      }
      return save(state).then(function () {
        throw new Error(fill(text.pin_wrong, {left: MAX_PIN_ERRORS - state.pin_errors}));
      });
    });
  }

  // --- signed messages (signed.py) -------------------------------------------------------
  function sign(state, typ, claims) {
    var header = {alg: "ES256", typ: typ, kid: state.device_id};
    var input = b64url(utf8(JSON.stringify(header))) + "." + b64url(utf8(JSON.stringify(claims)));
    return crypto.subtle.sign({name: "ECDSA", hash: "SHA-256"}, state.key, utf8(input))
      .then(function (signature) { return input + "." + b64url(signature); });
  }
  function deviceAuth(state) {
    var now = Math.floor(Date.now() / 1000);
    return sign(state, "ecps-auth+jwt", {iss: state.device_id, aud: issuer, iat: now,
                                         exp: now + 60, jti: randomText(16)});
  }
  function api(url, options) {
    return fetch(url, Object.assign({credentials: "omit", cache: "no-store"}, options))
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) {
            var error = new Error(body.error_description || String(response.status));
            error.code = body.error || "http_" + response.status;
            error.status = response.status;
            throw error;
          }
          return body;
        });
      });
  }
  function postJson(url, body) {
    return api(url, {method: "POST", headers: {"Content-Type": "application/json"},
                     body: JSON.stringify(body)});
  }

  // --- activation ------------------------------------------------------------------------
  var form = document.getElementById("activate-form");
  var activateError = document.getElementById("activate-error");

  function activationPayload() {
    var qr = document.getElementById("qr-text").value.trim();
    if (qr) {
      var prefix = "psc-ecps:activate?", parsed;
      try { parsed = qr.indexOf(prefix) === 0 && JSON.parse(qr.slice(prefix.length)); }
      catch (e) { parsed = null; }
      if (!parsed || typeof parsed.secret !== "string" || typeof parsed.issuer !== "string") {
        throw new Error(text.qr_invalid);
      }
      if (parsed.issuer.replace(/\/$/, "") !== issuer) throw new Error(text.qr_other);
      return {qr_secret: parsed.secret};
    }
    return {id_nat: document.getElementById("id-nat").value.trim(),
            sms_code: document.getElementById("sms-code").value.trim(),
            email_code: document.getElementById("email-code").value.trim()};
  }

  function activationRefused(error) {
    return text["activation_" + error.code] || fill(text.failed, {error: error.message});
  }

  function activate(event) {
    event.preventDefault();
    var pin = document.getElementById("new-pin").value;
    var again = document.getElementById("new-pin-again").value;
    var payload, pair, salt = crypto.getRandomValues(new Uint8Array(16));
    activateError.hidden = true;
    try {
      if (!/^[0-9]{4,}$/.test(pin)) throw new Error(text.pin_format);
      if (pin !== again) throw new Error(text.pin_mismatch);
      payload = activationPayload();
    } catch (problem) {
      return showActivationError(problem.message);
    }
    say(text.activating);
    // extractable: false applies to the private key; the public key is always exportable
    crypto.subtle.generateKey({name: "ECDSA", namedCurve: "P-256"}, false, ["sign", "verify"])
      .then(function (generated) {
        pair = generated;
        return crypto.subtle.exportKey("jwk", pair.publicKey);
      })
      .then(function (jwk) {
        payload.public_jwk = {kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y};
        payload.label = text.label;
        return postJson(root.dataset.activateUrl, payload);
      })
      .then(function (answer) {
        return pinHash(pin, salt).then(function (hash) {
          return save({issuer: issuer, device_id: answer.device_id, id_nat: answer.id_nat,
                       label: answer.label, key: pair.privateKey, pin_errors: 0,
                       pin: {salt: salt, hash: hash}});
        });
      })
      .then(function () { form.reset(); say(""); start(); })
      .catch(function (error) {
        say("");
        showActivationError(error.code ? activationRefused(error) : error.message);
      });
  }

  function showActivationError(message) {
    activateError.textContent = message;
    activateError.hidden = false;
    activateError.setAttribute("role", "alert");
  }

  // --- pending requests (long poll) and decisions ----------------------------------------
  var list = document.getElementById("requests");
  var noRequest = document.getElementById("no-request");
  var template = document.getElementById("request-template");

  function poll(wait, loop) {
    if (loop !== generation) return;
    load().then(function (state) {
      if (!state) return start();
      poller = new AbortController();
      return deviceAuth(state).then(function (auth) {
        return api(root.dataset.pendingUrl + "?wait=" + wait,
                   {headers: {Authorization: "ECPS " + auth}, signal: poller.signal});
      }).then(function (body) {
        if (loop !== generation) return;
        show(body.requests, state);
        setTimeout(function () { poll(25, loop); }, 0);
      });
    }).catch(function (error) {
      if (error.name === "AbortError") return;
      if (error.status === 401) {
        say(text.revoked);
        return;
      }
      say(text.unreachable);
      setTimeout(function () { poll(0, loop); }, 5000);
    });
  }

  function refresh() {
    generation += 1;
    if (poller) poller.abort();
    poll(0, generation);
  }

  function show(requests, state) {
    var live = {};
    requests.forEach(function (r) {
      live[r.request] = true;
      if (!shown[r.request]) {
        shown[r.request] = render(r, state);
        if (!firstAnswer) {
          say(fill(text.new_request, {app: r.client || text.unknown_app}));
        }
      }
    });
    Object.keys(shown).forEach(function (id) {
      if (!live[id] && !shown[id].classList.contains("decided")) {
        shown[id].remove();
        delete shown[id];
      }
    });
    if (firstAnswer && wanted) {
      if (shown[wanted]) {
        list.insertBefore(shown[wanted], list.firstChild);
        shown[wanted].classList.add("wanted");
        shown[wanted].querySelector("input").focus();
      } else {
        say(text.wanted_gone);
      }
    }
    firstAnswer = false;
    noRequest.hidden = Object.keys(shown).length > 0;
  }

  function render(r, state) {
    var item = template.content.firstElementChild.cloneNode(true);
    var n = list.children.length + "-" + randomText(4);
    item.dataset.request = r.request;
    item.querySelector(".request-app").textContent = r.client || text.unknown_app;
    item.querySelector(".request-from").textContent =
      fill(text.request_from, {network: r.network || "?"});
    var codes = item.querySelector(".codes");
    r.candidates.forEach(function (code, i) {
      var input = document.createElement("input"), label = document.createElement("label");
      input.type = "radio";
      input.name = "code";
      input.value = code;
      input.id = "code-" + n + "-" + i;
      label.htmlFor = input.id;
      label.className = "code-choice";
      label.appendChild(input);
      label.appendChild(document.createTextNode(code));
      codes.appendChild(label);
    });
    var pin = item.querySelector(".pin");
    pin.id = "pin-" + n;
    item.querySelector(".pin-label").htmlFor = pin.id;
    item.addEventListener("submit", function (event) {
      event.preventDefault();
      var picked = item.querySelector("input[name=code]:checked");
      if (!picked) return result(item, text.pick_code);
      decide(item, r, "approve", picked.value, pin.value);
    });
    item.querySelector(".deny").addEventListener("click", function () {
      decide(item, r, "deny");
    });
    list.appendChild(item);
    return item;
  }

  function result(item, message) {
    item.querySelector(".result").textContent = message;
  }

  function decide(item, r, decision, code, pin) {
    var buttons = item.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    load().then(function (state) {
      if (!state) throw new Error(text.pin_wiped);
      return (decision === "approve" ? checkPin(state, pin) : Promise.resolve(true))
        .then(function () {
          var claims = {request: r.request, nonce: r.nonce, decision: decision,
                        iat: Math.floor(Date.now() / 1000)};
          if (code !== undefined) claims.code = code;
          return sign(state, "ecps-decision+jwt", claims);
        });
    }).then(function (token) {
      return postJson(root.dataset.decisionUrl, {decision: token});
    }).then(function (answer) {
      finish(item, answer.status === "approved" ? text.approved
        : (decision === "approve" ? text.wrong_code : text.denied));
    }).catch(function (error) {
      if (error.code === "expired" || error.code === "already_decided") {
        return finish(item, text[error.code]);
      }
      buttons.forEach(function (b) { b.disabled = false; });
      result(item, error.code ? fill(text.failed, {error: error.message}) : error.message);
      load().then(function (state) { if (!state) start(); });
    });
  }

  function finish(item, message) {
    item.classList.add("decided");
    item.querySelectorAll("input, button").forEach(function (control) {
      control.disabled = true;
    });
    result(item, message);
    refresh();
  }

  // --- start -----------------------------------------------------------------------------
  document.getElementById("forget").addEventListener("click", function () {
    generation += 1;
    if (poller) poller.abort();
    forget().then(function () { say(text.forgotten); start(); });
  });
  form.addEventListener("submit", activate);

  function start() {
    load().then(function (state) {
      document.getElementById("activation").hidden = !!state;
      document.getElementById("device").hidden = !state;
      if (!state) {
        Object.keys(shown).forEach(function (id) { shown[id].remove(); delete shown[id]; });
        return;
      }
      document.getElementById("device-info").textContent =
        fill(text.activated, {id_nat: state.id_nat});
      firstAnswer = true;
      refresh();
    });
  }

  if (!window.isSecureContext || !window.crypto || !crypto.subtle || !window.indexedDB) {
    say(text.no_crypto);
    return;
  }
  start();
})();
