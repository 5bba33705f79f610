/**
 * The one set of status lights every table, title and issue uses, so that a person learns
 * them once: green is fine, orange is working but short (a backup at one destination
 * only), red needs a person, white could not tell.
 */
export const LIGHT = {
  ok: '🟢',
  degraded: '🟠',
  failed: '🔴',
  skipped: '⚪',
} as const;
export type Light = keyof typeof LIGHT;

/** `🟢 ok`: a status with its light in front. */
export function lit(light: Light, text: string): string {
  return `${LIGHT[light]} ${text}`;
}
