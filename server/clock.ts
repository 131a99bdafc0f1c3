/**
 * The server's clock for holds, idle timeouts and tombstones: whole
 * milliseconds on a monotonic clock, so a wall-clock jump (NTP, a suspended
 * VM) neither ends holds early nor keeps sessions past their idle timeout.
 *
 * Whole numbers also keep per-session time fields small: V8 stores an
 * integer below 2^31 in the field itself, where a Date.now() value needs a
 * 16-byte heap number per field (a server holds several per idle session).
 * Past 24 days of uptime the values get boxed again; nothing else changes.
 */
export function clockMs(): number {
  return Math.floor(performance.now());
}
