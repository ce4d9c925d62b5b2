/*
 * Scell signing widget: opens a signer's signing page in a modal on your own site.
 *
 *   <script src="https://<scell>/static/scell/widget.js" data-publishable-key="pk_live_..."></script>
 *   <script>
 *     Scell.openSigning({
 *       url: signingUrl,              // a signer's signing URL, from the API (never a secret key!)
 *       onEvent: function (event) {   // event.type: "signer.signed" | "signer.declined" | "closed"
 *         if (event.type === "signer.signed") { ... }
 *       },
 *     });
 *   </script>
 *
 * The page must be served from one of the publishable key's allowed origins: Scell lets only those
 * frame the signing page (Content-Security-Policy: frame-ancestors) and posts events to that origin only.
 * Escape, the close button or a click outside the dialog close it (event "closed"). openSigning returns
 * {close: function}. Only a publishable key (pk_...) is accepted: anything else throws.
 * No dependencies; no cookies or storage of its own.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var scriptKey = script ? script.getAttribute("data-publishable-key") || "" : "";
  var EVENTS = { "signer.signed": true, "signer.declined": true, closed: true };
  var current = null;

  function checkKey(key) {
    if (typeof key !== "string" || key.indexOf("pk_") !== 0) {
      // A secret key in a web page would be readable by every visitor: refuse loudly.
      throw new Error("Scell: a publishable key (pk_...) is required, in data-publishable-key or options.publishableKey.");
    }
    return key;
  }

  function style(element, rules) {
    // Style properties, not a style attribute: the host page's CSP may forbid inline style attributes.
    for (var name in rules) {
      if (Object.prototype.hasOwnProperty.call(rules, name)) element.style[name] = rules[name];
    }
    return element;
  }

  function openSigning(options) {
    options = options || {};
    var key = checkKey(options.publishableKey || scriptKey);
    if (!options.url) throw new Error("Scell: options.url (the signer's signing URL) is required.");
    var target = new URL(options.url, window.location.href);
    if (target.protocol !== "https:" && target.protocol !== "http:") {
      throw new Error("Scell: the signing URL must be http(s).");
    }
    target.searchParams.set("embed", "1");
    target.searchParams.set("pk", key);
    target.searchParams.set("origin", window.location.origin);
    var onEvent = typeof options.onEvent === "function" ? options.onEvent : function () {};

    if (current) current.close(true);

    var previousFocus = document.activeElement;
    var previousOverflow = document.body.style.overflow;
    var overlay = style(document.createElement("div"), {
      position: "fixed", top: "0", right: "0", bottom: "0", left: "0", zIndex: "2147483000",
      background: "rgba(15, 20, 30, 0.6)", display: "flex", alignItems: "center", justifyContent: "center",
    });
    overlay.setAttribute("data-scell-widget", "");
    var small = window.matchMedia && window.matchMedia("(max-width: 600px)").matches;
    var dialog = style(document.createElement("div"), {
      position: "relative", background: "#fff", overflow: "hidden",
      width: small ? "100%" : "min(760px, 96vw)", height: small ? "100%" : "min(920px, 94vh)",
      borderRadius: small ? "0" : "10px", boxShadow: "0 10px 40px rgba(0, 0, 0, 0.35)",
    });
    dialog.setAttribute("role", "dialog");
    dialog.setAttribute("aria-modal", "true");
    dialog.setAttribute("aria-label", options.title || "Signature");
    var closeButton = style(document.createElement("button"), {
      position: "absolute", top: "6px", right: "8px", width: "40px", height: "40px", border: "0",
      borderRadius: "20px", background: "rgba(255, 255, 255, 0.9)", fontSize: "26px", lineHeight: "40px",
      cursor: "pointer", color: "#1d2330", padding: "0",
    });
    closeButton.type = "button";
    closeButton.setAttribute("aria-label", options.closeLabel || "Close");
    closeButton.textContent = "\u00d7";
    var frame = style(document.createElement("iframe"), {
      width: "100%", height: "100%", border: "0", display: "block",
    });
    frame.src = target.toString();
    frame.title = options.title || "Signature";
    // The signing page may run its scripts, post its forms and open the PDF in a new tab, but never
    // navigate the host page.
    frame.setAttribute(
      "sandbox",
      "allow-scripts allow-forms allow-same-origin allow-popups allow-popups-to-escape-sandbox allow-downloads"
    );
    dialog.appendChild(frame);
    dialog.appendChild(closeButton);
    overlay.appendChild(dialog);

    var closed = false;
    var instance = { close: close }; // what a later openSigning closes (silently) before opening
    function emit(type) {
      try {
        onEvent({ type: type });
      } catch (error) {
        // The host's handler failing must not leave the modal stuck open.
        setTimeout(function () { throw error; });
      }
    }
    function close(silent) {
      if (closed) return;
      closed = true;
      window.removeEventListener("message", onMessage);
      document.removeEventListener("keydown", onKey, true);
      if (overlay.parentNode) overlay.parentNode.removeChild(overlay);
      document.body.style.overflow = previousOverflow;
      if (current === instance) current = null;
      if (previousFocus && previousFocus.focus) previousFocus.focus();
      if (silent !== true) emit("closed");
    }
    function onMessage(event) {
      // Only the frame we opened, from the Scell origin it was opened on, speaking our format.
      if (event.source !== frame.contentWindow || event.origin !== target.origin) return;
      var data = event.data;
      if (!data || data.source !== "scell" || !EVENTS[data.type]) return;
      if (data.type === "closed") close();
      else emit(data.type);
    }
    function onKey(event) {
      if (event.key === "Escape") {
        event.preventDefault();
        close();
      }
    }

    closeButton.addEventListener("click", function () { close(); });
    overlay.addEventListener("click", function (event) { if (event.target === overlay) close(); });
    window.addEventListener("message", onMessage);
    document.addEventListener("keydown", onKey, true);
    document.body.appendChild(overlay);
    document.body.style.overflow = "hidden";
    frame.focus();

    current = instance;
    return { close: function () { close(); }, iframe: frame };
  }

  window.Scell = window.Scell || {};
  window.Scell.openSigning = openSigning;
})();
