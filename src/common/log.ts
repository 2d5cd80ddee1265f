/**
 * Logging through LogTape: human-readable lines by default, JSON lines with
 * `--log-format json`. Everything goes to stderr, synchronously, so nothing is
 * lost when the daemon exits right after a line.
 *
 * @module
 */
import {
  configureSync,
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
  const format = options.format === "json" ? jsonLine : getTextFormatter({
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

/**
 * One JSON object per line: `@timestamp`, `level`, `message` (values written
 * as they are, a string without quotes), `logger` and `properties`.
 * (LogTape's own JSON formatter quotes string values inside the message.)
 */
export function jsonLine(record: LogRecord): string {
  let message = "";
  for (let i = 0; i < record.message.length; i++) {
    const part = record.message[i];
    message += i % 2 === 0 || typeof part === "string" ? String(part) : safeJson(part);
  }
  return JSON.stringify({
    "@timestamp": new Date(record.timestamp).toISOString(),
    level: record.level === "warning" ? "WARN" : record.level.toUpperCase(),
    message,
    logger: record.category.join("."),
    properties: record.properties,
  }) + "\n";
}

function safeJson(v: unknown): string {
  if (v instanceof Error) return v.message;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
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
