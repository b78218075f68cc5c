// RFC 8259 §4: names within an object SHOULD be unique, and when they are not, parsers disagree
// on which value counts (JSON.parse takes the last, others the first or refuse). A proxy that
// decides on one reading and forwards bytes the server reads another way can be bypassed, so a
// body it decides on is forwarded re-serialized when it has a duplicate name.

/**
 * Does valid JSON `text` have an object with two equal names (compared after their escapes are
 * decoded, as every parser compares them)? `text` must already have been parsed successfully.
 */
export function hasDuplicateKeys(text: string): boolean {
  // One entry per open container: the names seen so far in an object, `null` for an array.
  const stack: (Set<string> | null)[] = [];
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      const top = stack[stack.length - 1];
      if (expectName && top) {
        const raw = text.slice(i + 1, end);
        const name = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        if (top.has(name)) return true;
        top.add(name);
        expectName = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      stack.push(new Set());
      expectName = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
      expectName = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectName = false;
    } else if (c === 0x2c /* , */) {
      expectName = stack[stack.length - 1] != null;
    }
  }
  return false;
}

/** Index of the quote that closes the string opening at `start`. */
function stringEnd(text: string, start: number): number {
  let j = text.indexOf('"', start + 1);
  for (;;) {
    let backslashes = 0;
    for (let k = j - 1; text.charCodeAt(k) === 0x5c /* \ */; k--) backslashes++;
    if (backslashes % 2 === 0) return j;
    j = text.indexOf('"', j + 1);
  }
}
