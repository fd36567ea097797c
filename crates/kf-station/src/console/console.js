"use strict";
// Renders the station snapshot the server pushes on /events. Text only
// (textContent): nothing from the station is interpreted as markup.

const LABELS = {
  idle: ["\u25CB", "IDLE"],
  fob_present: ["\u25C9", "FOB PRESENT"],
  working: ["\u231B", "WORKING"],
  pass: ["\u2714", "PASS"],
  fail: ["\u2716", "FAIL"],
  offline: ["\u26A0", "OFFLINE"],
};

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function detail(r) {
  switch (r.state) {
    case "idle": return "present a fob";
    case "fob_present": return "hold the fob still";
    case "working": return r.words + " …";
    case "pass": return "remove the fob" + (r.uid ? " · " + r.uid : "");
    case "fail": return r.reason;
    case "offline": return r.reason;
    default: return "";
  }
}

function tile(r) {
  const [sym, word] = LABELS[r.state] || ["?", r.state.toUpperCase()];
  const t = el("article", "tile " + r.state);
  t.dataset.reader = r.reader_id;
  t.dataset.state = r.state;
  t.appendChild(el("div", "reader", r.reader_id));
  const label = el("div", "label");
  label.appendChild(el("span", "sym", sym + " "));
  label.appendChild(el("span", "word", word));
  t.appendChild(label);
  t.appendChild(el("div", "detail", detail(r)));
  t.appendChild(el("div", "count", "\u2714 " + r.good + "   \u2716 " + r.failed));
  return t;
}

function render(s) {
  document.getElementById("tiles").replaceChildren(...s.readers.map(tile));
  document.getElementById("good").textContent = s.good;
  document.getElementById("failed").textContent = s.failed;
  const total = s.good + s.failed;
  document.getElementById("yield").textContent =
    total ? (100 * s.good / total).toFixed(1) + " %" : "\u2013";
  const klms = document.getElementById("klms");
  klms.textContent = s.klms_reachable === null ? "\u2013"
    : s.klms_reachable ? "\u2714 reachable" : "\u2716 UNREACHABLE";
  document.getElementById("backlog").textContent =
    s.upload_backlog === null ? "\u2013" : s.upload_backlog;
  const recent = document.querySelector("#recent tbody");
  recent.replaceChildren(...s.recent.map((o) => {
    const tr = el("tr");
    tr.appendChild(el("td", null, o.time));
    tr.appendChild(el("td", null, o.reader_id));
    tr.appendChild(el("td", o.pass ? "pass" : "fail", o.pass ? "\u2714 PASS" : "\u2716 FAIL"));
    tr.appendChild(el("td", null, o.uid || "\u2013"));
    tr.appendChild(el("td", null, o.ms.toFixed(0)));
    tr.appendChild(el("td", null, o.reason || ""));
    return tr;
  }));
  const medians = document.querySelector("#medians tbody");
  medians.replaceChildren(...s.stage_medians_ms.map(([stage, ms]) => {
    const tr = el("tr");
    tr.appendChild(el("td", null, stage));
    tr.appendChild(el("td", null, ms.toFixed(2)));
    return tr;
  }));
}

function connect() {
  const link = document.getElementById("link");
  const source = new EventSource("/events");
  source.onopen = () => {
    link.className = "link up";
    link.textContent = "\u2714 live";
  };
  source.onmessage = (e) => render(JSON.parse(e.data));
  source.onerror = () => {
    link.className = "link down";
    link.textContent = "\u26A0 station not answering \u2013 retrying";
  };
}

document.addEventListener("DOMContentLoaded", connect);
