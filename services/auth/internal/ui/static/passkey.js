// Passkey ceremonies for the hosted UI: button[data-passkey] begins on the server, runs
// navigator.credentials.create/get and submits the credential's JSON in data-form.
(function () {
  'use strict';

  var MSG_CANCELLED = 'The passkey request was cancelled or timed out.';
  var MSG_NETWORK = 'Could not reach the server. Check your connection and try again.';
  var MSG_BEGIN = 'Could not start the passkey request. Try again.';
  var MSG_OTHER = 'Something went wrong with the passkey. Try again.';

  function init() {
    var buttons = document.querySelectorAll('button[data-passkey]');
    if (!window.PublicKeyCredential || !navigator.credentials) {
      document.querySelectorAll('[data-passkey], [data-passkey-only]').forEach(function (el) { el.hidden = true; });
      return;
    }
    buttons.forEach(function (btn) {
      btn.addEventListener('click', function (ev) { ev.preventDefault(); if (!btn.disabled) run(btn); });
    });
    // Coming back (bfcache) to a page left by form.submit(): the buttons work again.
    window.addEventListener('pageshow', function (ev) {
      if (ev.persisted) buttons.forEach(function (btn) { setBusy(btn, false); });
    });
  }

  function UIError(message) { this.uiMessage = message; }

  function b64urlToBuf(s) {
    var b64 = String(s).replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) b64 += '=';
    var bin = atob(b64);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  }

  function bufToB64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function withIds(list) {
    return list.map(function (c) { return Object.assign({}, c, { id: b64urlToBuf(c.id) }); });
  }

  function decodeOptions(create, json) {
    var PKC = window.PublicKeyCredential;
    if (create && typeof PKC.parseCreationOptionsFromJSON === 'function') return PKC.parseCreationOptionsFromJSON(json);
    if (!create && typeof PKC.parseRequestOptionsFromJSON === 'function') return PKC.parseRequestOptionsFromJSON(json);
    var o = Object.assign({}, json, { challenge: b64urlToBuf(json.challenge) });
    if (json.user) o.user = Object.assign({}, json.user, { id: b64urlToBuf(json.user.id) });
    if (json.excludeCredentials) o.excludeCredentials = withIds(json.excludeCredentials);
    if (json.allowCredentials) o.allowCredentials = withIds(json.allowCredentials);
    return o;
  }

  function credentialJSON(cred) {
    if (typeof cred.toJSON === 'function') {
      try { return cred.toJSON(); } catch (e) { /* some wrappers throw: encode by hand */ }
    }
    var r = cred.response;
    var response = { clientDataJSON: bufToB64url(r.clientDataJSON) };
    ['attestationObject', 'authenticatorData', 'signature', 'userHandle'].forEach(function (k) {
      if (r[k]) response[k] = bufToB64url(r[k]);
    });
    if (typeof r.getTransports === 'function') response.transports = r.getTransports();
    return {
      id: cred.id, rawId: bufToB64url(cred.rawId), type: cred.type, response: response,
      clientExtensionResults: typeof cred.getClientExtensionResults === 'function' ? cred.getClientExtensionResults() : {},
      authenticatorAttachment: cred.authenticatorAttachment || undefined
    };
  }

  function setField(form, name, value) {
    var input = form.querySelector('input[name="' + name + '"]');
    if (!input) {
      input = form.appendChild(document.createElement('input'));
      input.type = 'hidden';
      input.name = name;
    }
    input.value = value;
  }

  function setBusy(btn, busy) {
    btn.disabled = busy;
    if (busy) btn.setAttribute('aria-busy', 'true'); else btn.removeAttribute('aria-busy');
  }

  function showError(el, message) {
    if (!el) return;
    el.textContent = message;
    el.hidden = !message;
  }

  function messageFor(err) {
    if (err instanceof UIError) return err.uiMessage;
    switch (err && err.name) {
      case 'NotAllowedError': case 'AbortError': return MSG_CANCELLED;
      case 'InvalidStateError': return 'This passkey is already registered for your account.';
      case 'NotSupportedError': return 'This device does not support passkeys of this kind.';
      case 'SecurityError': return 'Passkeys are not available on this address.';
      default: return MSG_OTHER;
    }
  }

  async function run(btn) {
    var kind = btn.dataset.passkey;
    var create = kind === 'register';
    var form = document.getElementById(btn.dataset.form || '');
    var errEl = document.getElementById(btn.dataset.error || '');
    showError(errEl, '');
    setBusy(btn, true);
    try {
      if (!form) throw new UIError(MSG_OTHER);
      var body = {};
      if (create) {
        var pw = form.querySelector('[name="current_password"]');
        body.current_password = pw ? pw.value : '';
      }
      var meta = document.querySelector('meta[name="csrf-token"]');
      var res;
      try {
        res = await fetch(btn.dataset.begin, {
          method: 'POST', credentials: 'same-origin', body: JSON.stringify(body),
          headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': meta ? meta.content : '' }
        });
      } catch (e) { throw new UIError(MSG_NETWORK); }
      var data = await res.json().catch(function () { return null; });
      if (!res.ok || !data || !data.publicKey || !data.flow_id) {
        var m = data && data.error && data.error.message;
        throw new UIError(typeof m === 'string' && m ? m : MSG_BEGIN);
      }
      var json = data.publicKey.publicKey || data.publicKey; // tolerate {publicKey:{publicKey}}
      var publicKey = decodeOptions(create, json);
      var cred = create
        ? await navigator.credentials.create({ publicKey: publicKey })
        : await navigator.credentials.get({ publicKey: publicKey });
      if (!cred) throw new UIError(MSG_CANCELLED);
      setField(form, 'flow_id', data.flow_id);
      setField(form, 'credential', JSON.stringify(credentialJSON(cred)));
      form.submit(); // the button stays disabled while the page navigates
    } catch (err) {
      showError(errEl, messageFor(err));
      setBusy(btn, false);
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
