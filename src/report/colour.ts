// Colour for a person at a terminal: ✓/✗, warnings and errors. Never when the stream is not a
// TTY, and never when NO_COLOR is set to anything but '' (https://no-color.org) or TERM=dumb.

const CODES = { red: '31', green: '32', yellow: '33', bold: '1' } as const;

/** Whether `stream` gets colour, given the environment. */
export function colourFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && !env.NO_COLOR && env.TERM !== 'dumb';
}

function sgr(code: string, s: string): string {
  return `\u001b[${code}m${s}\u001b[0m`;
}

/** Colours the marks a reader scans for: ✓ ✅ green, ✗ ❌ red, ⚠️ yellow, the `error:`/`warning:` prefixes. */
export function paint(text: string): string {
  return text
    .replace(/✓|✅/g, (m) => sgr(CODES.green, m))
    .replace(/✗|❌/g, (m) => sgr(CODES.red, m))
    .replace(/⚠️?/g, (m) => sgr(CODES.yellow, m))
    .replace(/^error:/gm, sgr(`${CODES.bold};${CODES.red}`, 'error:'))
    .replace(/^warning:/gm, sgr(CODES.yellow, 'warning:'));
}
