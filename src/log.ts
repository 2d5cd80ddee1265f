/**
 * Logging through LogTape: human-readable lines by default, JSON lines with
 * `--log-format json`. Everything goes to stderr, synchronously, so nothing is
 * lost when the daemon exits right after a line.
 *
 * @module
 */
import {
  configureSync,
  getJsonLinesFormatter,
  getLogger,
  getTextFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
  parseLogLevel,
  resetSync,
} from "@logtape/logtape";
import { printableLine } from "./printable.ts";

export type LogFormat = "text" | "json";
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];
export const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warning", "error", "fatal"];

const encoder = new TextEncoder();

/** Configures the process-wide logger. Safe to call more than once. */
export function setupLogging(options: { level: LogLevel; format: LogFormat }): void {
  const format = options.format === "json"
    ? getJsonLinesFormatter({ properties: "nest:properties" })
    : getTextFormatter({
      timestamp: "date-time-tz",
      category: ".",
      // Names and texts from peers are shown with their control characters visible, not obeyed.
      value: (v: unknown) => printableLine(typeof v === "string" ? v : Deno.inspect(v)),
    });
  resetSync();
  configureSync({
    sinks: {
      stderr: (record: LogRecord) => {
        Deno.stderr.writeSync(encoder.encode(format(record)));
      },
    },
    loggers: [
      { category: "lanchat", lowestLevel: options.level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** Parses a `--log-level` value; throws a TypeError naming the valid ones. */
export function parseLevel(s: string): LogLevel {
  try {
    return parseLogLevel(s === "warn" ? "warning" : s);
  } catch {
    throw new TypeError(`Unknown log level "${s}": use one of ${LOG_LEVELS.join(", ")}`);
  }
}

/** A logger in the lanchat category tree. */
export function logger(...sub: string[]): Logger {
  return getLogger(["lanchat", ...sub]);
}
