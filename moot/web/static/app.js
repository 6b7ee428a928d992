// moot's study pages: the probability control (always 100% in all), the clock, quoting the
// passage and the speech's counters, and live turns arriving without a reload. Text is only
// ever set with textContent or a textarea's value: nothing here builds markup from text.
"use strict";

function spread(values, i, value) {
  // answer i gets `value`%, the others share the rest in proportion to what they had
  const n = values.length;
  value = Math.max(0, Math.min(100, value));
  if (n === 1) return [100];
  const others = [];
  for (let j = 0; j < n; j++) if (j !== i) others.push(j);
  const rest = 100 - value;
  const had = others.reduce((s, j) => s + values[j], 0);
  const weights = others.map((j) => (had ? values[j] : 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const shares = weights.map((w) => Math.floor((rest * w) / total));
  const order = others.map((_, k) => k).sort((a, b) => ((rest * weights[b]) % total) - ((rest * weights[a]) % total) || a - b);
  let left = rest - shares.reduce((a, b) => a + b, 0);
  for (const k of order) { if (left-- <= 0) break; shares[k] += 1; }
  const out = new Array(n).fill(0);
  out[i] = value;
  others.forEach((j, k) => { out[j] = shares[k]; });
  return out;
}

function initProbabilities(root) {
  const box = root.querySelector("#probs");
  if (!box) return;
  const n = parseInt(box.dataset.n, 10);
  const inputs = [], outputs = [];
  for (let i = 0; i < n; i++) { inputs.push(root.querySelector("#p" + i)); outputs.push(root.querySelector("#o" + i)); }
  inputs.forEach((input, i) => input.addEventListener("input", () => {
    const now = spread(inputs.map((x) => parseInt(x.value, 10)), i, parseInt(input.value, 10));
    now.forEach((v, j) => { inputs[j].value = v; outputs[j].textContent = v + "%"; });
  }));
}

function initClock(root) {
  const clock = root.querySelector("#clock");
  if (!clock) return;
  let left = parseInt(clock.dataset.left, 10);
  const show = () => {
    clock.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    const up = root.querySelector("#time-up");
    if (left === 0 && up) up.hidden = false;  // the server refuses a late answer anyway
  };
  show();
  setInterval(() => { left = Math.max(0, left - 1); show(); }, 1000);
}

const QUOTE = /<\s*(\/?)\s*quote\s*>/gi;  // for exec: its lastIndex is ours
const TAGS = /<\s*\/?\s*quote\s*>/gi;  // for replace

function sizes(text) {
  // characters without the quote tags, characters inside (outermost, paired) quotes
  let chars = text.replace(TAGS, "").length, quoted = 0, depth = 0, start = 0, m;
  QUOTE.lastIndex = 0;
  while ((m = QUOTE.exec(text)) !== null) {
    if (!m[1]) { if (depth++ === 0) start = m.index + m[0].length; }
    else if (depth > 0 && --depth === 0) quoted += text.slice(start, m.index).replace(TAGS, "").length;
  }
  return [chars, quoted];
}

function initSpeech(root) {
  const area = root.querySelector("#content");
  const limits = root.querySelector("#limits");
  const count = () => {
    if (!limits || !area) return;
    const [chars, quoted] = sizes(area.value);
    const cl = parseInt(limits.dataset.chars, 10), ql = parseInt(limits.dataset.quotes, 10);
    const c = root.querySelector("#count-chars"), q = root.querySelector("#count-quoted");
    c.textContent = chars; q.textContent = quoted;
    c.className = cl && chars > cl ? "over" : ""; q.className = ql && quoted > ql ? "over" : "";
  };
  if (area) area.addEventListener("input", count);
  count();
  const button = root.querySelector("#quote");
  const source = root.querySelector("#source");
  if (button && source && area) {
    button.addEventListener("click", () => {
      const sel = window.getSelection();
      if (!sel || sel.rangeCount === 0 || !source.contains(sel.anchorNode)) return;
      const chosen = sel.toString().trim();
      if (!chosen) return;
      const at = area.selectionStart ?? area.value.length;
      const insert = "<quote>" + chosen + "</quote> ";
      area.value = area.value.slice(0, at) + insert + area.value.slice(area.selectionEnd ?? at);
      area.focus();
      count();
    });
  }
}

function initWaiting(root) {
  const wait = root.querySelector("#waiting");
  if (!wait || !window.EventSource) return;
  const events = new EventSource(wait.dataset.events);
  events.addEventListener("turn", async () => {
    events.close();
    const res = await fetch(document.body.dataset.base + "/live", { credentials: "same-origin" });
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    const main = document.querySelector("main");
    main.replaceChildren(...Array.from(doc.querySelector("main").childNodes).map((n) => document.adoptNode(n)));
    main.className = doc.querySelector("main").className;
    document.title = doc.title;
    init(main);
  });
}

function init(root) {
  initProbabilities(root);
  initClock(root);
  initSpeech(root);
  initWaiting(root);
}

document.addEventListener("DOMContentLoaded", () => init(document));
