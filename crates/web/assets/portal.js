// The member portal: a rotating QR code (data-refresh="20" on its <img>) is fetched again
// every N seconds while the page is visible, so the code shown is always current.
(function () {
  "use strict";
  document.querySelectorAll("img[data-refresh]").forEach(function (img) {
    var every = Math.max(5, parseInt(img.dataset.refresh, 10) || 20) * 1000;
    var base = img.src.split("?")[0];
    setInterval(function () {
      if (document.visibilityState === "visible") img.src = base + "?t=" + Date.now();
    }, every);
  });
})();
