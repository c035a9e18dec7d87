// The page of `hybrid-scorer serve`: one form, POST /v1/predict?explain=true, the answer drawn as SVG.
// No build step and no CDN: plain DOM calls, so it works offline.
"use strict";
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const fmt = (x) => Math.round(x).toLocaleString("en-US");

function svg(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function loadFlairs() {
  const response = await fetch("/v1/flairs", { headers: headers() });
  if (!response.ok) return;
  const select = $("flair");
  for (const flair of (await response.json()).flairs) select.append(new Option(flair, flair));
}

function headers() {
  const key = $("api-key").value.trim();
  return key ? { "X-API-Key": key, "Content-Type": "application/json" } : { "Content-Type": "application/json" };
}

// What the API's error answers mean to a person (the API's own detail follows).
const STATUS_TEXT = {
  401: "This service needs an API key: open \"API key\" and paste yours.",
  413: "The post is too long for this service.",
  422: "The post was not accepted:",
  429: "Too many requests for now: wait a few seconds and try again.",
  503: "The service is not ready yet (loading and warming the model): try again in a moment.",
};

function showError(status, detail) {
  const lead = STATUS_TEXT[status] || `The service answered ${status}.`;
  $("error").textContent = detail ? `${lead} ${detail}` : lead;
  $("error").hidden = false;
}

// The answer's interval levels, narrowest first, from its fields (interval_80, interval_90, ...): the
// levels are chosen once, in hybrid_scorer/intervals.py, and the page follows whatever the API sends.
function intervals(prediction) {
  return Object.keys(prediction)
    .filter((key) => /^interval_\d+$/.test(key) && prediction[key])
    .map((key) => ({ level: Number(key.slice("interval_".length)), bounds: prediction[key] }))
    .sort((a, b) => a.level - b.level);
}

function drawInterval(prediction) {
  const chart = $("interval-chart");
  chart.replaceChildren();
  const ranges = intervals(prediction);
  const widest = ranges.length ? ranges[ranges.length - 1].bounds[1] : prediction.score;
  const top = Math.max(widest, prediction.score, 10) + 1;
  const decades = Math.ceil(Math.log10(top));
  const x = (score) => 14 + (282 * Math.log10(score + 1)) / decades;
  for (let d = 0; d <= decades; d += 1) {
    const tick = d === 0 ? 0 : 10 ** d;
    chart.append(svg("line", { x1: x(tick), x2: x(tick), y1: 8, y2: 46, stroke: "#d0d7de" }));
    chart.append(svg("text", { x: x(tick), y: 60, "text-anchor": "middle" }, fmt(tick)));
  }
  const band = (bounds, cls, y, h) =>
    bounds && chart.append(svg("rect", { class: cls, x: x(bounds[0]), width: Math.max(x(bounds[1]) - x(bounds[0]), 1), y, height: h }));
  // widest first and lightest, each narrower one darker and thinner on top of it
  ranges.slice().reverse().forEach((range, i) =>
    band(range.bounds, i === 0 ? "band-wide" : "band-narrow", 14 + 6 * i, 26 - 12 * i));
  $("interval-caption").textContent = ranges.length
    ? `Where the score is likely to land: ${ranges.map((r, i) => `${r.level}% (${i < ranges.length - 1 ? "dark" : "light"})`).join(" and ")} ranges, on a log scale`
    : "";
  chart.append(svg("circle", { class: "point", cx: x(prediction.score), cy: 27, r: 5 }));
}

// The drivers, largest first: what each reads in a poster's words and its factor on one line, its bar
// (green raises, red lowers, around the middle) below; the model's average is said in words.
function drawDrivers(prediction) {
  const chart = $("contributions-chart");
  chart.replaceChildren();
  const drivers = prediction.drivers || [];
  const bias = prediction.contributions ? prediction.contributions.bias : undefined;
  $("bias").textContent = bias === undefined ? "" : `The model's typical post scores about ${fmt(Math.expm1(bias))}. What moved this one from there:`;
  const span = Math.max(...drivers.map((d) => Math.abs(d.effect_log)), 0.01);
  const row = 32;
  chart.setAttribute("viewBox", `0 0 320 ${Math.max(drivers.length * row, 10)}`);
  drivers.forEach((driver, i) => {
    const width = (150 * Math.abs(driver.effect_log)) / span;
    const y = i * row;
    chart.append(svg("text", { x: 0, y: y + 12 }, driver.reads_as));
    chart.append(svg("text", { x: 318, y: y + 12, "text-anchor": "end", class: "factor" }, driver.factor));
    chart.append(svg("rect", { class: driver.effect_log >= 0 ? "pos" : "neg", x: driver.effect_log >= 0 ? 160 : 160 - width, y: y + 16, width, height: 10 }));
  });
}

function describeLLM(p) {
  // the API says why in a person's words (serving/schemas.py), as it does for factors and chances
  if (p.fallback) return `Not used: ${p.llm_failure_words || "it failed"}, so the model without the LLM answered.`;
  if (p.cache_hit) return `Answered from the cache (this post was seen before); whole prediction ${p.latency_ms.toFixed(1)} ms.`;
  if (p.llm_called) return `Read the post: ${p.llm_latency_ms.toFixed(0)} ms, ${p.llm_tokens} tokens, $${p.llm_cost_usd.toFixed(4)}; whole prediction ${p.latency_ms.toFixed(0)} ms.`;
  return `Not part of this model; prediction took ${p.latency_ms.toFixed(1)} ms.`;
}

function show(p) {
  $("score").textContent = fmt(p.score);
  $("score").dataset.score = String(p.score);
  const ranges = intervals(p);
  $("interval-text").textContent = ranges.length
    ? `Likely between ${ranges.map((r) => `${fmt(r.bounds[0])} and ${fmt(r.bounds[1])} (${r.level}%)`).join(", ")}.`
    : "This model gives no interval.";
  $("p-top").textContent = p.p_top_words == null ? "" : `Chance of reaching 1,000 or more: ${p.p_top_words}.`;
  drawInterval(p);
  drawDrivers(p);
  $("llm-status").textContent = describeLLM(p);
  // one part (a sentence, or a block at either end of the body) lifted the score past the limit: say which
  $("steering").hidden = !p.steered;
  $("steering").textContent = p.steered && p.steering
    ? `Part of the ${p.steering.place}, “${p.steering.text}”, raised the score ${Math.exp(p.steering.effect_log).toFixed(1)}x on its own; one sentence (or one block of them at either end of the body) may add at most ${Math.exp(p.steering.limit_log).toFixed(1)}x, so the score counts that much of it.`
    : "";
  $("result").hidden = false;
}

async function submit(event) {
  event.preventDefault();
  $("error").hidden = true;
  const post = { title: $("title").value, body: $("body").value };
  if ($("flair").value !== "__unknown__") post.flair = $("flair").value;
  $("submit").disabled = true;
  try {
    const response = await fetch("/v1/predict?explain=true", { method: "POST", headers: headers(), body: JSON.stringify(post) });
    const answer = await response.json().catch(() => ({}));
    if (response.ok) show(answer);
    else showError(response.status, typeof answer.detail === "string" ? answer.detail : "");
  } catch (error) {
    showError(0, "The service could not be reached: is it running?");
  } finally {
    $("submit").disabled = false;
  }
}

$("post-form").addEventListener("submit", submit);
loadFlairs();
