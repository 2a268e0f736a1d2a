// Injected before any page script (the page's CSP does not apply to it): logs every use of an
// API used for fingerprinting, and every CSP violation, into window.__audit.
(() => {
  const audit = window.__audit = {fingerprint: [], csp: []};
  const note = (name) => audit.fingerprint.push(name);
  const wrap = (proto, names, label) => names.forEach((n) => {
    const d = Object.getOwnPropertyDescriptor(proto, n);
    if (!d) return;
    if (typeof d.value === 'function') {
      const f = d.value;
      Object.defineProperty(proto, n, {...d, value: function (...a) { note(label + '.' + n); return f.apply(this, a); }});
    } else if (d.get) {
      const g = d.get;
      Object.defineProperty(proto, n, {...d, get: function () { note(label + '.' + n); return g.call(this); }});
    }
  });
  wrap(HTMLCanvasElement.prototype, ['getContext', 'toDataURL', 'toBlob'], 'canvas');
  wrap(CanvasRenderingContext2D.prototype, ['getImageData', 'measureText', 'fillText'], 'canvas2d');
  wrap(Navigator.prototype, ['plugins', 'mimeTypes', 'hardwareConcurrency', 'deviceMemory', 'languages', 'getBattery', 'mediaDevices'], 'navigator');
  wrap(Screen.prototype, ['width', 'height', 'colorDepth', 'pixelDepth', 'availWidth', 'availHeight'], 'screen');
  if (window.FontFaceSet) wrap(FontFaceSet.prototype, ['check', 'load'], 'fonts');
  for (const name of ['AudioContext', 'OfflineAudioContext', 'webkitAudioContext']) {
    const C = window[name];
    if (C) window[name] = new Proxy(C, {construct(t, a) { note('audio.' + name); return new t(...a); }});
  }
  if (window.WebGLRenderingContext) wrap(WebGLRenderingContext.prototype, ['getParameter', 'getExtension'], 'webgl');
  document.addEventListener('securitypolicyviolation', (e) => audit.csp.push(e.violatedDirective + ' ' + e.blockedURI));
})();
