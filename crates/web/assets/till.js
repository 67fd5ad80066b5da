// The cashier terminal: scanning a member's QR code with the device camera (or from a
// photo) with the vendored jsQR, and printing. No inline scripts (the CSP forbids them):
// everything hangs on data attributes.
(function () {
  "use strict";

  // <button data-print>: print the receipt.
  document.addEventListener("click", function (ev) {
    if (ev.target.closest && ev.target.closest("[data-print]")) window.print();
  });

  function submitCode(formSel, text) {
    var form = document.querySelector(formSel);
    if (!form || !text) return false;
    form.querySelector("input[name=value]").value = text;
    form.submit();
    return true;
  }

  function decode(source, w, h) {
    var canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    var ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(source, 0, 0, w, h);
    var img = ctx.getImageData(0, 0, w, h);
    var code = jsQR(img.data, w, h, { inversionAttempts: "attemptBoth" });
    return code ? code.data : null;
  }

  function showError() {
    var e = document.querySelector("[data-scan-error]");
    if (e) e.hidden = false;
  }

  // <button data-scan="#form">: open the camera, read frames until a QR code decodes,
  // then submit the form with it.
  var stream = null;
  function stop() {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
    var box = document.querySelector("[data-scanner]");
    if (box) box.hidden = true;
  }
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("[data-scan]");
    if (ev.target.closest && ev.target.closest("[data-scan-stop]")) { stop(); return; }
    if (!b) return;
    var box = document.querySelector("[data-scanner]");
    var video = box && box.querySelector("video");
    if (!video || !navigator.mediaDevices || typeof jsQR === "undefined") { showError(); return; }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false }).then(function (s) {
      stream = s;
      box.hidden = false;
      video.srcObject = s;
      video.play();
      var started = Date.now();
      (function tick() {
        if (!stream) return;
        if (video.readyState >= 2 && video.videoWidth) {
          var scale = Math.min(1, 640 / video.videoWidth);
          var text = decode(video, Math.round(video.videoWidth * scale), Math.round(video.videoHeight * scale));
          if (text) { stop(); submitCode(b.dataset.scan, text); return; }
        }
        if (Date.now() - started > 60000) { stop(); showError(); return; }
        requestAnimationFrame(tick);
      })();
    }, function () { showError(); });
  });

  // <input type=file data-scan-file="#form">: read the QR code from a photo.
  document.addEventListener("change", function (ev) {
    var input = ev.target;
    if (!input.dataset || !input.dataset.scanFile || !input.files || !input.files[0]) return;
    var url = URL.createObjectURL(input.files[0]);
    var img = new Image();
    img.onload = function () {
      var scale = Math.min(1, 1024 / Math.max(img.naturalWidth, img.naturalHeight));
      var text = decode(img, Math.round(img.naturalWidth * scale), Math.round(img.naturalHeight * scale));
      URL.revokeObjectURL(url);
      if (!submitCode(input.dataset.scanFile, text)) showError();
    };
    img.onerror = showError;
    img.src = url;
  });
})();
