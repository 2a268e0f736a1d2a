/* Cloop chat widget: one dependency-free script.
 * Embed: <script src="API/api/v1/widget/widget.js" data-token="cw_..." defer></script>
 * Optional signed visitor: data-visitor-id="..." data-visitor-sig="<hex HMAC-SHA256>".
 * - Renders in a Shadow DOM; every text it shows goes through textContent (no HTML parsing).
 * - Identifies the visitor with a random id in localStorage: no cookies, no fingerprinting.
 * - Talks only to the API origin it was loaded from; works under a strict CSP (no inline
 *   script, no eval, styles through a constructed stylesheet).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.dataset.token) return;
  var API = new URL(script.src).origin;
  var TOKEN = script.dataset.token;
  var BASE = API + "/api/v1/widget/" + encodeURIComponent(TOKEN);
  var STORE = "cloop." + TOKEN.slice(0, 10) + ".";

  var CSS =
    ":host{all:initial}" +
    ".w{position:fixed;right:20px;bottom:20px;z-index:2147483000;font:14px/1.45 system-ui,sans-serif;color:#1d1d1f}" +
    ".launch{width:56px;height:56px;border-radius:50%;border:0;background:#0b5cad;color:#fff;font-size:15px;font-weight:600;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}" +
    ".panel{display:none;flex-direction:column;width:340px;max-width:calc(100vw - 40px);height:480px;max-height:calc(100vh - 100px);background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);overflow:hidden;margin-bottom:12px}" +
    ".open .panel{display:flex}" +
    ".head{background:#0b5cad;color:#fff;padding:10px 14px;font-weight:600;display:flex;justify-content:space-between;align-items:center}" +
    ".head button{background:none;border:0;color:#fff;font-size:18px;cursor:pointer}" +
    ".log{flex:1;overflow-y:auto;padding:10px;display:flex;flex-direction:column;gap:8px}" +
    ".m{padding:8px 10px;border-radius:10px;max-width:85%;white-space:pre-wrap;overflow-wrap:anywhere}" +
    ".user{align-self:flex-end;background:#0b5cad;color:#fff}" +
    ".bot{align-self:flex-start;background:#f0f2f5}" +
    ".err{align-self:center;background:#fdecea;color:#8a1c13;font-size:13px}" +
    ".src{font-size:12px;margin-top:6px;color:#555}.src a{color:#0b5cad}" +
    "form{display:flex;gap:6px;padding:8px;border-top:1px solid #e5e5e5}" +
    "input,textarea{flex:1;font:inherit;padding:7px;border:1px solid #ccc;border-radius:8px}" +
    "button.send{border:0;background:#0b5cad;color:#fff;border-radius:8px;padding:0 12px;cursor:pointer}" +
    ".lead{flex-direction:column;align-items:stretch}.lead label{font-size:12px;display:flex;gap:6px}" +
    ".link{background:none;border:0;color:#0b5cad;cursor:pointer;font-size:12px;padding:4px 10px;text-align:left}";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = String(text);
    return node;
  }

  function randomId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function stored(key, make) {
    try {
      var value = localStorage.getItem(STORE + key);
      if (!value && make) {
        value = make();
        localStorage.setItem(STORE + key, value);
      }
      return value;
    } catch (e) {
      return make ? make() : null; // storage blocked: an id for this page view only
    }
  }

  function remember(key, value) {
    try {
      localStorage.setItem(STORE + key, value);
    } catch (e) {
      /* storage blocked: the session lasts for this page view */
    }
  }

  var visitor = script.dataset.visitorId || stored("visitor", randomId);
  var signature = script.dataset.visitorSig || null;

  function identity(body) {
    body.visitor_id = visitor;
    if (signature) body.visitor_sig = signature;
    return body;
  }

  function post(path, body) {
    return fetch(BASE + path, {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(identity(body)),
    });
  }

  function problem(response) {
    return response.json().then(
      function (p) {
        return (p && p.detail) || "Request failed (" + response.status + ").";
      },
      function () {
        return "Request failed (" + response.status + ").";
      }
    );
  }

  /* Server-sent events out of a fetch body: calls onEvent(name, data) per event. */
  function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true });
        var parts = buffer.split("\n\n");
        buffer = parts.pop();
        parts.forEach(function (block) {
          var name = "message", data = "";
          block.split("\n").forEach(function (line) {
            if (line.indexOf("event: ") === 0) name = line.slice(7);
            else if (line.indexOf("data: ") === 0) data += line.slice(6);
          });
          try {
            onEvent(name, JSON.parse(data));
          } catch (e) {
            /* a malformed event is skipped */
          }
        });
        return pump();
      });
    }
    return pump();
  }

  function mount(config) {
    var host = el("div");
    host.setAttribute("data-cloop-widget", "");
    var root = host.attachShadow({ mode: "open" });
    if (root.adoptedStyleSheets !== undefined && typeof CSSStyleSheet === "function") {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    }
    var wrap = el("div", "w");
    var panel = el("div", "panel");
    var head = el("div", "head");
    head.appendChild(el("span", null, config.site_name));
    var close = el("button", null, "\u00d7");
    close.setAttribute("aria-label", "Close chat");
    head.appendChild(close);
    var log = el("div", "log");
    log.setAttribute("aria-live", "polite");
    var form = el("form");
    var input = el("input");
    input.name = "message";
    input.maxLength = 2000;
    input.placeholder = "Ask a question\u2026";
    input.setAttribute("aria-label", "Your question");
    var send = el("button", "send", "Send");
    send.type = "submit";
    form.appendChild(input);
    form.appendChild(send);
    var leadLink = el("button", "link", "Leave your e-mail");
    leadLink.type = "button";
    var lead = leadForm(config, log);
    panel.appendChild(head);
    panel.appendChild(log);
    panel.appendChild(leadLink);
    panel.appendChild(lead);
    panel.appendChild(form);
    var launch = el("button", "launch", "Chat");
    launch.setAttribute("aria-label", "Open chat");
    wrap.appendChild(panel);
    wrap.appendChild(launch);
    root.appendChild(wrap);
    document.body.appendChild(host);

    function toggle() {
      wrap.classList.toggle("open");
      if (wrap.classList.contains("open")) input.focus();
    }
    launch.addEventListener("click", toggle);
    close.addEventListener("click", toggle);
    leadLink.addEventListener("click", function () {
      lead.style.display = lead.style.display === "flex" ? "none" : "flex";
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = input.value.trim();
      if (!text || send.disabled) return;
      input.value = "";
      ask(text, log, send);
    });
  }

  function say(log, cls, text) {
    var bubble = el("div", "m " + cls, text);
    log.appendChild(bubble);
    log.scrollTop = log.scrollHeight;
    return bubble;
  }

  function showSources(bubble, sources) {
    if (!sources || !sources.length) return;
    var box = el("div", "src", "Sources: ");
    sources.forEach(function (source, i) {
      if (i) box.appendChild(document.createTextNode(", "));
      var url = null;
      try {
        url = source.url ? new URL(source.url) : null;
      } catch (e) {
        url = null;
      }
      if (url && (url.protocol === "https:" || url.protocol === "http:")) {
        var a = el("a", null, source.title || url.href);
        a.href = url.href;
        a.target = "_blank";
        a.rel = "noopener noreferrer nofollow";
        box.appendChild(a);
      } else {
        box.appendChild(el("span", null, source.title));
      }
    });
    bubble.appendChild(box);
  }

  function ask(text, log, send) {
    say(log, "user", text);
    var bubble = say(log, "bot", "\u2026");
    var answer = el("span");
    var sources = [];
    send.disabled = true;
    var body = { message: text };
    var session = stored("session");
    if (session) body.session_id = session;
    post("/chat", body)
      .then(function (response) {
        if (!response.ok) {
          return problem(response).then(function (detail) {
            bubble.remove();
            say(log, "err", detail);
          });
        }
        bubble.textContent = "";
        bubble.appendChild(answer);
        return readEvents(response, function (name, data) {
          if (name === "session") remember("session", data.session_id);
          else if (name === "sources") sources = data;
          else if (name === "delta") answer.textContent += data.text;
          else if (name === "error") say(log, "err", data.detail);
          else if (name === "done") showSources(bubble, sources);
          log.scrollTop = log.scrollHeight;
        });
      })
      .catch(function () {
        say(log, "err", "The chat is unreachable right now.");
      })
      .then(function () {
        send.disabled = false;
      });
  }

  function leadForm(config, log) {
    var form = el("form", "lead");
    form.style.display = "none";
    var email = el("input");
    email.type = "email";
    email.required = true;
    email.placeholder = "you@example.com";
    email.setAttribute("aria-label", "Your e-mail");
    var label = el("label");
    var consent = el("input");
    consent.type = "checkbox";
    consent.required = true;
    label.appendChild(consent);
    label.appendChild(el("span", null, config.consent_text));
    var send = el("button", "send", "Send e-mail");
    send.type = "submit";
    form.appendChild(email);
    form.appendChild(label);
    form.appendChild(send);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = { email: email.value, consent: consent.checked };
      var session = stored("session");
      if (session) body.session_id = session;
      post("/leads", body).then(
        function (response) {
          if (response.ok) {
            form.style.display = "none";
            say(log, "bot", "Thank you! We will contact you by e-mail.");
          } else {
            problem(response).then(function (detail) {
              say(log, "err", detail);
            });
          }
        },
        function () {
          say(log, "err", "The chat is unreachable right now.");
        }
      );
    });
    return form;
  }

  function start() {
    fetch(BASE + "/config", { mode: "cors", credentials: "omit" })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (config) {
        if (config) mount(config);
      })
      .catch(function () {
        /* the widget stays hidden when the API is unreachable */
      });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
