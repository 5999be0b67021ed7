import { describe, it } from "node:test";
import { expect } from "expect";
import pl from "nodejs-polars";
import { figureHtml, figureText, tableBundle, withPlotlyJs } from "../lib/notebook/display.ts";
import { Progress } from "../lib/notebook/progress.ts";

describe("display", () => {
  it("renders a polars DataFrame as HTML and text, eliding the middle rows", () => {
    const df = pl.DataFrame({
      sku: Array.from({ length: 30 }, (_, i) => i),
      name: Array.from({ length: 30 }, (_, i) => `<map ${i}>`),
    });
    const bundle = tableBundle(df, { title: "products", maxRows: 6 });
    const html = bundle["text/html"] as string;
    expect(html).toContain("30 rows × 2 columns");
    expect(html).toContain("&lt;map 0&gt;");
    expect(html).not.toContain("&lt;map 10&gt;");
    expect(html).toContain("&lt;map 29&gt;");
    expect(bundle["text/plain"] as string).toContain("products (30 rows)");
  });

  it("keeps plotly.js out of notebook figures and adds it once to an exported page", () => {
    const figure = { data: [{ type: "bar", x: [1], y: [2] }] };
    const fragment = figureHtml(figure);
    expect(fragment.length).toBeLessThan(2_000);
    const page = withPlotlyJs(`<html><head><title>x</title></head><body>${fragment}${fragment}</body></html>`);
    expect(page.indexOf("/*plotly.js bundled*/")).toBeLessThan(page.indexOf("</head>"));
    expect(page.split("/*plotly.js bundled*/").length).toBe(2);
    expect(withPlotlyJs(page)).toBe(page);
    expect(withPlotlyJs("<html><head></head><body>no figures</body></html>")).not.toContain("plotly.js bundled");
  });

  it("embeds plotly.js when asked and draws each figure", () => {
    const figure = {
      data: [{ type: "bar", x: [1, 2], y: [3, 4], name: "counts" }],
      layout: { title: { text: "Class counts" } },
    };
    const first = figureHtml(figure, { includePlotly: true });
    const second = figureHtml(figure, { includePlotly: false });
    expect(first.length).toBeGreaterThan(1_000_000);
    expect(second.length).toBeLessThan(2_000);
    expect(second).toContain("Plotly.newPlot");
    expect(figureText(figure)).toBe('[plot] Class counts: bar "counts"');
  });
});

describe("progress", () => {
  it("reports count, percentage, rate and metrics", () => {
    const bar = new Progress({ total: 4, label: "train", unit: "pairs", silent: true });
    bar.tick(1, { loss: 0.5 });
    bar.tick(1, { loss: 0.25 });
    const line = bar.line();
    expect(line).toMatch(/^train .* 2\/4 \(50%\) .* pairs\/s eta .* loss=0\.25$/);
    expect(bar.value).toBe(2);
    expect(() => new Progress({ total: Number.NaN, label: "x" })).toThrow(/total must be >= 0/);
  });

  it("in log mode prints the final line once, and again at done() only when something changed", async () => {
    const lines: string[] = [];
    const original = console.error;
    console.error = (text: string) => lines.push(text);
    try {
      const bar = new Progress({ total: 2, label: "embed", mode: "log", intervalMs: 60_000 });
      bar.tick(1); // within the interval: not drawn
      bar.tick(1); // reaching the total always draws
      await bar.done(); // nothing changed since: not printed again
      expect(lines.map((l) => l.split(" ")[2])).toEqual(["2/2"]);
      const other = new Progress({ total: 2, label: "train", mode: "log", intervalMs: 60_000 });
      other.tick(2);
      await other.done({ loss: 0.1 });
      expect(lines.slice(1).map((l) => l.endsWith("loss=0.1"))).toEqual([false, true]);
    } finally {
      console.error = original;
    }
  });
});
