// Small charts drawn as inline SVG (no library): horizontal bars with one or more series, and their legend.
// Every chart carries a text alternative; the numbers behind it are also shown as a table by the page.

const SVG_NS = "http://www.w3.org/2000/svg";
export const SERIES_COLOURS = ["#1f5fa8", "#b42318", "#1d7a46", "#8a5a00", "#6b3fa0"];

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  Object.entries(attributes).forEach(([name, value]) => node.setAttribute(name, String(value)));
  children.forEach((child) => node.append(typeof child === "string" ? document.createTextNode(child) : child));
  return node;
}

function shorten(text, max) {
  const value = String(text);
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

// A horizontal bar chart. rows: [{label, values: [number|null, ...]}]; series: [{name}]; format(value) -> text.
// `description` is the chart's accessible name. Bars of one row are grouped, one per series.
export function barChart({ rows, series, format = (value) => String(value), description, max }) {
  const labelWidth = 170;
  const valueWidth = 64;
  const plotWidth = 360;
  const barHeight = 16;
  const gap = 3;
  const rowGap = 10;
  const groupHeight = series.length * (barHeight + gap) - gap;
  const height = Math.max(rows.length, 1) * (groupHeight + rowGap) + rowGap;
  const width = labelWidth + plotWidth + valueWidth;
  const top = max ?? Math.max(1, ...rows.flatMap((row) => row.values.map((value) => value ?? 0)));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img",
    "aria-label": description, preserveAspectRatio: "xMinYMin meet" });
  chart.append(svg("title", {}, description));
  rows.forEach((row, rowIndex) => {
    const y0 = rowGap + rowIndex * (groupHeight + rowGap);
    chart.append(svg("text", { x: labelWidth - 8, y: y0 + groupHeight / 2 + 4, "text-anchor": "end",
      class: "chart-label" }, shorten(row.label, 24)));
    row.values.forEach((value, seriesIndex) => {
      const y = y0 + seriesIndex * (barHeight + gap);
      const length = value ? Math.max(2, (value / top) * plotWidth) : 0;
      chart.append(svg("rect", { x: labelWidth, y, width: length, height: barHeight, rx: 2,
        fill: SERIES_COLOURS[seriesIndex % SERIES_COLOURS.length] }));
      chart.append(svg("text", { x: labelWidth + length + 4, y: y + barHeight - 4, class: "chart-value" },
        value === null || value === undefined ? "—" : format(value)));
    });
  });
  chart.append(svg("line", { x1: labelWidth, x2: labelWidth, y1: 0, y2: height, class: "chart-axis" }));
  return chart;
}

// The legend of a chart with several series.
export function legend(series) {
  const list = document.createElement("ul");
  list.className = "chart-legend";
  series.forEach((item, index) => {
    const entry = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = `swatch swatch-${index % SERIES_COLOURS.length}`;
    swatch.setAttribute("aria-hidden", "true");
    entry.append(swatch, document.createTextNode(item.name));
    list.append(entry);
  });
  return list;
}
