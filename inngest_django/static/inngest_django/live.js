/*
 * Live updates for the inngest_django admin pages (run list, run page, functions page).
 *
 * Every few seconds, fetch the page's own URL and put the fresh #content-main in place of the
 * old one, unless the operator turned it off (a checkbox above the page, remembered in
 * localStorage), the tab is hidden, or the page holds input the swap would throw away (a
 * ticked row, typed text). No dependencies; loaded by admin/inngest_django/live.html.
 */
(function () {
  "use strict";

  var STATE_KEY = "inngest_django.live";
  // A per-browser knob for the period, read at load; the script tag's attribute is the default.
  var INTERVAL_KEY = "inngest_django.live.interval_ms";
  // Storage may be refused (a privacy mode): live updates then stay on, and are not remembered.
  function stored(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (error) {
      return null;
    }
  }

  function store(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch (error) {
      // Not remembered; the checkbox still works for this page.
    }
  }

  var script = document.querySelector("script[data-inngest-live]");
  var config = script ? script.dataset : {};
  var interval =
    parseInt(stored(INTERVAL_KEY), 10) ||
    parseInt(config.intervalMs, 10) ||
    3000;
  var timer = null;
  var inFlight = false;
  var switchedOff = stored(STATE_KEY) === "off";

  function enabled() {
    return !switchedOff;
  }

  function setStatus(text) {
    var status = document.getElementById("inngest-live-status");
    if (status) {
      status.textContent = text;
    }
  }

  function pad(number, width) {
    var text = String(number);
    while (text.length < width) {
      text = "0" + text;
    }
    return text;
  }

  function clockText(date) {
    return (
      pad(date.getHours(), 2) + ":" + pad(date.getMinutes(), 2) + ":" +
      pad(date.getSeconds(), 2) + "." + pad(date.getMilliseconds(), 3)
    );
  }

  // A select with no option marked selected shows its first one.
  function defaultIndex(select) {
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].defaultSelected) {
        return i;
      }
    }
    return select.options.length ? 0 : -1;
  }

  // True if swapping the region would lose what the operator did: a ticked row, typed text.
  function holdsInput(region) {
    var fields = region.querySelectorAll("input, textarea, select");
    for (var i = 0; i < fields.length; i++) {
      var field = fields[i];
      if (field.type === "hidden" || field.type === "submit" || field.type === "button") {
        continue;
      }
      var ticks = field.type === "checkbox" || field.type === "radio";
      // Focus counts where typing or choosing is under way, not on a box just clicked.
      if (field === document.activeElement && !ticks) {
        return true;
      }
      if (ticks) {
        if (field.checked !== field.defaultChecked) {
          return true;
        }
      } else if (field.tagName === "SELECT") {
        if (field.selectedIndex !== defaultIndex(field)) {
          return true;
        }
      } else if (field.value !== field.defaultValue) {
        return true;
      }
    }
    return false;
  }

  // What the swap would reset: open <details> and scrolled lists, by their place in the page.
  function viewState(region) {
    return {
      open: Array.prototype.map.call(region.querySelectorAll("details"), function (el) {
        return el.open;
      }),
      scrolls: Array.prototype.map.call(region.querySelectorAll(".timeline-rows"), function (el) {
        return el.scrollTop;
      }),
    };
  }

  function restoreView(region, state) {
    region.querySelectorAll("details").forEach(function (el, index) {
      if (index < state.open.length) {
        el.open = state.open[index];
      }
    });
    region.querySelectorAll(".timeline-rows").forEach(function (el, index) {
      if (index < state.scrolls.length) {
        el.scrollTop = state.scrolls[index];
      }
    });
  }

  function refresh() {
    if (!enabled() || document.hidden || inFlight) {
      return;
    }
    var region = document.getElementById("content-main");
    if (!region) {
      return;
    }
    if (holdsInput(region)) {
      setStatus(config.pausedText || "paused while you edit");
      return;
    }
    inFlight = true;
    window
      .fetch(window.location.href, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { "X-Requested-With": "XMLHttpRequest" },
      })
      .then(function (response) {
        if (!response.ok || response.redirected) {
          throw new Error(String(response.status));
        }
        return response.text();
      })
      .then(function (text) {
        // Turned off, or edited, while the request was out: leave the page as it is.
        var current = document.getElementById("content-main");
        if (!enabled() || !current || holdsInput(current)) {
          return;
        }
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("content-main");
        if (!fresh) {
          return;
        }
        var state = viewState(current);
        current.replaceWith(document.adoptNode(fresh));
        restoreView(fresh, state);
        // The admin's action checkboxes bind their handlers once; bind the new rows' again.
        var rows = document.querySelectorAll("tr input.action-select");
        if (window.Actions && rows.length && document.getElementById("action-toggle")) {
          window.Actions(rows);
        }
        setStatus((config.updatedText || "updated") + " " + clockText(new Date()));
        document.dispatchEvent(new CustomEvent("inngest:live-updated"));
      })
      .catch(function () {
        setStatus(config.failedText || "update failed; retrying");
      })
      .then(function () {
        inFlight = false;
      });
  }

  function start() {
    if (timer === null) {
      timer = window.setInterval(refresh, interval);
    }
  }

  function stop() {
    if (timer !== null) {
      window.clearInterval(timer);
      timer = null;
    }
  }

  function addToggle() {
    var region = document.getElementById("content-main");
    if (!region || document.getElementById("inngest-live")) {
      return;
    }
    var box = document.createElement("div");
    box.id = "inngest-live";
    box.className = "inngest-live";
    var label = document.createElement("label");
    var input = document.createElement("input");
    input.type = "checkbox";
    input.id = "inngest-live-toggle";
    input.checked = enabled();
    label.appendChild(input);
    label.appendChild(document.createTextNode(" " + (config.label || "Live updates")));
    var status = document.createElement("span");
    status.id = "inngest-live-status";
    status.className = "inngest-live-status";
    box.appendChild(label);
    box.appendChild(status);
    region.parentNode.insertBefore(box, region);
    input.addEventListener("change", function () {
      switchedOff = !input.checked;
      store(STATE_KEY, input.checked ? "on" : "off");
      if (input.checked) {
        setStatus("");
        start();
        refresh();
      } else {
        stop();
        setStatus(config.offText || "off");
      }
    });
    if (input.checked) {
      start();
    } else {
      setStatus(config.offText || "off");
    }
  }

  // Another tab turned it on or off: follow.
  window.addEventListener("storage", function (event) {
    if (event.key !== STATE_KEY) {
      return;
    }
    switchedOff = event.newValue === "off";
    var input = document.getElementById("inngest-live-toggle");
    if (input) {
      input.checked = enabled();
    }
    if (enabled()) {
      start();
    } else {
      stop();
    }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", addToggle);
  } else {
    addToggle();
  }
})();
