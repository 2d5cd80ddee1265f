/**
 * The Prometheus text format, written by the driver and by each service
 * for `/metrics`.
 *
 * @module
 */

/** Collects metrics, then renders them. */
export class MetricsWriter {
  #lines: string[] = [];

  /** One metric: `samples` are `[labels, value]`, labels as `{name="value"}` or "". */
  metric(name: string, type: "counter" | "gauge", help: string, samples: [string, number][]): void {
    this.#lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) this.#lines.push(`${name}${labels} ${v}`);
  }

  /** A metric with one unlabelled sample. */
  single(name: string, type: "counter" | "gauge", help: string, value: number): void {
    this.metric(name, type, help, [["", value]]);
  }

  toString(): string {
    return this.#lines.join("\n") + "\n";
  }
}

/** A label value escaped for the text format. */
export function labelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
