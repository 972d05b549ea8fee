// The rnnapps serve page: one tab per served model, each calling the REST API
// (POST /v1/models/NAME:predict) with TF Serving's row format.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function predict(model, instances) {
  const response = await fetch(`/v1/models/${encodeURIComponent(model.name)}:predict`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ instances }),
  });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new Error(`HTTP ${response.status}: ${text.slice(0, 200)}`);
  }
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body.predictions;
}

function showError(result, error) {
  result.replaceChildren(el("div", { class: "error", role: "alert", text: error.message }));
}

function form(model, { label, placeholder, button, run }) {
  const id = `${model.name}-input`;
  const input = el("textarea", { id, placeholder, "aria-label": label });
  const submit = el("button", { class: "primary", id: `${model.name}-submit`, text: button });
  const result = el("div", { class: "result", id: `${model.name}-result`, "aria-live": "polite" });
  submit.addEventListener("click", async () => {
    submit.disabled = true;
    result.textContent = "…";
    try {
      await run(input.value, result);
    } catch (error) {
      showError(result, error);
    } finally {
      submit.disabled = false;
    }
  });
  return { input, submit, result, nodes: [el("label", { for: id, text: label }), input, el("div", { class: "row" }, submit), result] };
}

// --- Sentiment: text in, label and probabilities out --------------------------

function sentimentPanel(model) {
  const names = model.info.label_names || [];
  const parts = form(model, {
    label: "A review", button: "Classify",
    placeholder: "The coffee arrived fresh and tastes great.",
    run: async (text, result) => {
      const [prediction] = await predict(model, [text]);
      const bars = prediction.probabilities.map((p, i) => el("div", { class: "bar" },
        el("span", { text: names[i] ?? `class ${i}` }),
        el("div", { class: "track" }, el("div", { class: "fill", style: `width:${(100 * p).toFixed(1)}%` })),
        el("span", { class: "probability", text: p.toFixed(3) })));
      result.replaceChildren(el("div", { class: "answer label", text: prediction.labels }), ...bars);
    },
  });
  return parts.nodes;
}

// --- Translation: German in, English out ------------------------------------

function translationPanel(model) {
  const parts = form(model, {
    label: "German", button: "Translate", placeholder: "Das Abendessen hat mir gut geschmeckt.",
    run: async (text, result) => {
      const [prediction] = await predict(model, [text]);
      result.replaceChildren(
        el("div", { class: "answer translation", text: prediction.translations }),
        el("div", { class: "muted", text: `score ${prediction.scores.toFixed(3)}` }));
    },
  });
  return parts.nodes;
}

// --- Captioning: an image in, a caption out -------------------------------------

function captioningPanel(model) {
  const id = `${model.name}-input`;
  const file = el("input", { type: "file", id, accept: "image/png,image/jpeg,image/gif,image/bmp" });
  const preview = el("img", { alt: "", hidden: "" });
  const drop = el("div", { class: "drop", id: `${model.name}-drop` },
    el("div", { text: "Drop an image here, or choose one: " }), file, preview);
  const result = el("div", { class: "result", id: `${model.name}-result`, "aria-live": "polite" });

  async function caption(blob) {
    preview.src = URL.createObjectURL(blob);
    preview.hidden = false;
    result.textContent = "…";
    try {
      const bytes = new Uint8Array(await blob.arrayBuffer());
      let binary = "";
      for (let i = 0; i < bytes.length; i += 0x8000) {
        binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      }
      const [prediction] = await predict(model, [{ b64: btoa(binary) }]);
      result.replaceChildren(
        el("div", { class: "answer caption", text: prediction.captions }),
        el("div", { class: "muted", text: `score ${prediction.scores.toFixed(3)}` }));
    } catch (error) {
      showError(result, error);
    }
  }
  file.addEventListener("change", () => file.files.length && caption(file.files[0]));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) caption(event.dataTransfer.files[0]);
  });
  return [el("label", { for: id, text: "An image (PNG, JPEG, GIF or BMP)" }), drop, result];
}

// --- Forecasting: a window in, a forecast with intervals out ------------------------

// `what`: "window" (the history) or "future" (known-future covariates over the horizon).
function parseWindow(text, lookback, features, what = "window") {
  const rows = text.trim().split(/\n+/).map((line) => line.trim().split(/[\s,;]+/).filter(Boolean).map(Number));
  let values = rows;
  if (features === 1) values = rows.flat().map((v) => [v]);
  const noun = what === "window" ? "The window" : "The future covariates";
  if (values.some((row) => row.some((v) => Number.isNaN(v)))) {
    throw new Error(`${noun} must be numbers (separated by spaces, commas or new lines).`);
  }
  if (values.length !== lookback || values.some((row) => row.length !== features)) {
    throw new Error((what === "window" ? `The model reads a window of ${lookback} steps`
      : `The model reads the future covariates of ${lookback} steps`) +
      (features > 1 ? ` with ${features} values per line` : "") + `; got ${values.length}.`);
  }
  return values;
}

function plot(window, forecast, lower, upper, unit) {
  const width = 800, height = 300, pad = 40;
  const all = [...window, ...forecast, ...(lower || []), ...(upper || [])];
  const low = Math.min(...all), high = Math.max(...all);
  const span = high - low || 1;
  const steps = window.length + forecast.length;
  const x = (i) => pad + (i * (width - 2 * pad)) / Math.max(steps - 1, 1);
  const y = (v) => height - pad - ((v - low) * (height - 2 * pad)) / span;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "plot");
  const add = (tag, attributes) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
    svg.append(node);
    return node;
  };
  const line = (values, offset) => values.map((v, i) => `${x(i + offset).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  if (lower && upper) {
    // The interval: along the upper bound, then back along the lower one.
    const points = [...upper.map((v, i) => [i, v]), ...lower.map((v, i) => [i, v]).reverse()]
      .map(([i, v]) => `${x(i + window.length).toFixed(1)},${y(v).toFixed(1)}`);
    add("polygon", { points: points.join(" "), fill: "#fb8500", "fill-opacity": 0.2, class: "interval" });
  }
  add("polyline", { points: line(window, 0), fill: "none", stroke: "#1f6feb", "stroke-width": 2, class: "history" });
  add("polyline", { points: line([window[window.length - 1], ...forecast], window.length - 1), fill: "none",
    stroke: "#fb8500", "stroke-width": 2, class: "forecast" });
  add("line", { x1: x(window.length - 1), x2: x(window.length - 1), y1: pad / 2, y2: height - pad / 2,
    stroke: "#8c959f", "stroke-dasharray": "4 4" });
  for (const value of [high, low]) {
    const text = add("text", { x: 4, y: y(value) + 4, "font-size": 12, fill: "#656d76" });
    text.textContent = Number(value).toPrecision(4);
  }
  // The time axis, in steps before and after the window's last value.
  const steps_ = unit ? ` ${unit}s` : " steps";
  for (const [i, label, anchor] of [[0, `−${window.length - 1}${steps_}`, "start"],
    [window.length - 1, "now", "middle"], [steps - 1, `+${forecast.length}${steps_}`, "end"]]) {
    const text = add("text", { x: x(i), y: height - 8, "font-size": 12, fill: "#656d76", "text-anchor": anchor });
    text.textContent = label;
  }
  return svg;
}

function forecastingPanel(model) {
  const info = model.info;
  const lookback = info.lookback || (model.inputs.window?.shape?.[1]);
  const features = model.inputs.window?.shape?.[2] || 1;
  // Known-future covariates (e.g. a workday flag) over the horizon: a second input.
  const futureShape = model.inputs.future?.shape;
  const futureId = `${model.name}-future`;
  const futureInput = futureShape ? el("textarea", { id: futureId, placeholder: "one line per forecast step",
    "aria-label": "future covariates" }) : null;
  const parts = form(model, {
    label: `The last ${lookback} values of ${info.name || "the series"}` + (features > 1 ? ` (${features} per line)` : ""),
    button: "Forecast", placeholder: "one number per step, oldest first",
    run: async (text, result) => {
      const window = parseWindow(text, lookback, features);
      let instance = window;
      if (futureInput) {
        instance = { window, future: parseWindow(futureInput.value, futureShape[1], futureShape[2], "future") };
      }
      const [prediction] = await predict(model, [instance]);
      const forecast = prediction.forecast ?? prediction;
      const quantiles = info.quantiles || [];
      let lower = null, upper = null;
      if (prediction.quantiles && quantiles.length > 1) {
        lower = prediction.quantiles.map((q) => q[0]);
        upper = prediction.quantiles.map((q) => q[q.length - 1]);
      }
      const history = window.map((row) => row[0]);
      const legend = el("div", { class: "legend" },
        el("span", {}, el("span", { class: "swatch", style: "background:#1f6feb" }), "window"),
        el("span", {}, el("span", { class: "swatch", style: "background:#fb8500" }), "forecast"));
      if (lower) {
        legend.append(el("span", {}, el("span", { class: "swatch", style: "background:#fb850033" }),
          `${Math.round(100 * (quantiles[quantiles.length - 1] - quantiles[0]))}% interval`));
      }
      const table = el("table", { class: "values" }, el("tr", {}, el("th", { text: "step" }),
        el("th", { text: "forecast" }), ...(lower ? [el("th", { text: "low" }), el("th", { text: "high" })] : [])));
      forecast.forEach((v, i) => table.append(el("tr", {}, el("td", { text: `+${i + 1}` }),
        el("td", { class: "forecast-value", text: v.toPrecision(5) }),
        ...(lower ? [el("td", { text: lower[i].toPrecision(5) }), el("td", { text: upper[i].toPrecision(5) })] : []))));
      const unit = /^[a-z]+$/.test(info.step || "") ? info.step : null;  // "week", "month", ...
      result.replaceChildren(plot(history, forecast, lower, upper, unit), legend, table);
    },
  });
  const nodes = parts.nodes;
  if (futureInput) {
    const names = (info.future_columns || []).join(", ");
    nodes.splice(2, 0, el("label", { for: futureId,
      text: `Their values over the next ${futureShape[1]} steps: ${names || "the future covariates"} (${futureShape[2]} per line)` }),
      futureInput);
  }
  // float32 values to 7 significant digits: 369.8, not 369.79998779296875.
  const rows = (values, perLine) => values.map((row) => row.map((v) => +v.toPrecision(7)).join(" "))
    .join(perLine > 1 ? "\n" : " ");
  if (Array.isArray(info.recent) && info.recent.length === lookback
      && (!futureInput || Array.isArray(info.recent_future))) {
    const example = el("button", { class: "secondary", id: `${model.name}-example`,
      text: futureInput ? "Use the last test window" : "Use the series' last window" });
    example.addEventListener("click", () => {
      parts.input.value = rows(info.recent, features);
      if (futureInput) futureInput.value = rows(info.recent_future, futureShape[2]);
    });
    parts.submit.parentNode.prepend(example);
  }
  return nodes;
}

// --- Next word: a text in, the likely next words and a continuation out ------------

function nextWordPanel(model) {
  const parts = form(model, {
    label: "The start of a sentence", button: "Suggest", placeholder: "I would like a cup of",
    run: async (text, result) => {
      const [prediction] = await predict(model, [{ text, k: 5 }]);
      const bars = prediction.words.map((word, i) => el("div", { class: "bar" },
        el("span", { text: word }),
        el("div", { class: "track" }, el("div", { class: "fill",
          style: `width:${(100 * prediction.probabilities[i]).toFixed(1)}%` })),
        el("span", { class: "probability", text: prediction.probabilities[i].toFixed(3) })));
      result.replaceChildren(
        el("div", { class: "answer continuation" },
          el("span", { class: "muted", text: `${text} ` }), el("span", { text: prediction.continuation })),
        ...bars);
    },
  });
  return parts.nodes;
}

// --- Any other SavedModel: a JSON request ------------------------------------

function genericPanel(model) {
  const parts = form(model, {
    label: "A predict request (TF Serving's JSON)", button: "Predict",
    placeholder: '{"instances": [...]}',
    run: async (text, result) => {
      let request;
      try {
        request = JSON.parse(text);
      } catch (error) {
        throw new Error(`Not JSON: ${error.message}`);
      }
      const response = await fetch(`/v1/models/${encodeURIComponent(model.name)}:predict`, {
        method: "POST", body: JSON.stringify(request) });
      result.replaceChildren(el("pre", { text: await response.text() }));
    },
  });
  return parts.nodes;
}

const PANELS = {
  sentiment: sentimentPanel, translation: translationPanel,
  captioning: captioningPanel, forecasting: forecastingPanel, next_word: nextWordPanel,
};

function select(name) {
  for (const tab of document.querySelectorAll("nav button")) {
    tab.setAttribute("aria-selected", String(tab.dataset.model === name));
  }
  for (const panel of document.querySelectorAll("main section")) {
    panel.hidden = panel.dataset.model !== name;
  }
}

async function main() {
  const tabs = document.getElementById("tabs");
  const panels = document.getElementById("panels");
  let models;
  try {
    models = (await (await fetch("/rnnapps/models")).json()).models;
  } catch (error) {
    panels.replaceChildren(el("div", { class: "error", text: `Cannot reach the server: ${error.message}` }));
    return;
  }
  if (!models.length) {
    panels.replaceChildren(document.getElementById("no-models").content.cloneNode(true));
    return;
  }
  panels.replaceChildren();
  for (const model of models) {
    const tab = el("button", { role: "tab", id: `tab-${model.name}`, text: model.name });
    tab.dataset.model = model.name;
    tab.addEventListener("click", () => select(model.name));
    tabs.append(tab);
    const panel = el("section", { role: "tabpanel", id: `panel-${model.name}` },
      el("p", { class: "muted", text: `${model.task || "SavedModel"} · version ${model.version}` +
        (model.info.name ? ` · trained on ${model.info.name}` : "") }),
      ...(PANELS[model.task] || genericPanel)(model));
    panel.dataset.model = model.name;
    panels.append(panel);
  }
  select(models[0].name);
  document.body.dataset.ready = "true";
}

main();
