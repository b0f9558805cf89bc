// Escape sequences in the output of a worker that is not a terminal. Programs such as
// agent CLIs colour their output (SGR) and send other control sequences (cursor
// moves, window titles) even without a pty. The transcript shows SGR's colours, bold,
// dim, italic, underline, inverse and strike-through as classes, and drops every other
// sequence: CSI, OSC (ended by BEL or ST), DCS, SOS, PM, APC, two- and three-byte
// escapes, and a lone ESC. The visible text is never dropped: a sequence that turns
// out malformed ends where it stops being one, and the character that ended it is
// text again; a string sequence (OSC and the like) that never ends is cut at the end
// of its line.
//
// One parser per output stream keeps its state between chunks, so a sequence split
// across two output events is read as one, and a colour set in one chunk goes on in
// the next. This module touches no DOM, so it also runs under node's test runner.

const ESC = 0x1b;
const BEL = 0x07;
const CAN = 0x18;
const SUB = 0x1a;
const LF = 0x0a;

/** Where the parser is between characters. */
const TEXT = 0;
const ESCAPE = 1; // after ESC
const ESCAPE_INTERMEDIATE = 2; // after ESC and 0x20-0x2f: waiting for the final byte
const CSI = 3; // after ESC [: parameters, intermediates, then a final byte
const STRING = 4; // OSC, DCS, SOS, PM, APC: skipped up to BEL or ST
const STRING_ESCAPE = 5; // ESC inside a string: ST if '\' follows

/** Parameter and intermediate bytes one CSI may hold before it is taken as malformed. */
const CSI_MAX = 256;

/**
 * The 256-colour palette as RGB (xterm's), used to map 256-colour and true-colour
 * SGR to the nearest of the 16 colours the page has classes for.
 */
const BASE16 = [
  [0, 0, 0], [205, 0, 0], [0, 205, 0], [205, 205, 0], [0, 0, 238], [205, 0, 205], [0, 205, 205], [229, 229, 229],
  [127, 127, 127], [255, 0, 0], [0, 255, 0], [255, 255, 0], [92, 92, 255], [255, 0, 255], [0, 255, 255], [255, 255, 255],
];

/** The nearest of the 16 base colours to an RGB colour. */
export function nearest16(r, g, b) {
  let best = 0;
  let bestDistance = Infinity;
  for (let i = 0; i < 16; i += 1) {
    const [br, bg, bb] = BASE16[i];
    const distance = (r - br) ** 2 + (g - bg) ** 2 + (b - bb) ** 2;
    if (distance < bestDistance) {
      best = i;
      bestDistance = distance;
    }
  }
  return best;
}

/** Colour `n` of the 256-colour palette as one of the 16 base colours. */
export function palette16(n) {
  if (n < 16) return n;
  if (n >= 232) {
    const level = 8 + (n - 232) * 10;
    return nearest16(level, level, level);
  }
  const cube = n - 16;
  const step = (v) => (v === 0 ? 0 : 55 + v * 40);
  return nearest16(step(Math.floor(cube / 36)), step(Math.floor(cube / 6) % 6), step(cube % 6));
}

/** The SGR attributes in force. */
function plain() {
  return { bold: false, dim: false, italic: false, underline: false, inverse: false, strike: false, fg: null, bg: null };
}

export class AnsiParser {
  constructor() {
    this.state = TEXT;
    /** A CSI's parameter and intermediate bytes so far. */
    this.params = '';
    this.attrs = plain();
    /** The class names of `attrs` ('' for none). */
    this.classes = '';
  }

  /**
   * Reads `text`, the next chunk of one stream. Returns its visible text as runs of
   * `[text, classes]`, in order, with no empty run; `classes` is a space-separated
   * list of `ansi-*` class names, or '' for plain text.
   */
  push(text) {
    const runs = [];
    // The common case: no escape anywhere, nothing pending.
    if (this.state === TEXT && text.indexOf('\x1b') === -1) {
      if (text) runs.push([text, this.classes]);
      return runs;
    }
    let i = 0;
    let start = 0;
    const n = text.length;
    const flush = (end) => {
      if (end > start) {
        const last = runs[runs.length - 1];
        if (last && last[1] === this.classes) last[0] += text.slice(start, end);
        else runs.push([text.slice(start, end), this.classes]);
      }
    };
    while (i < n) {
      switch (this.state) {
        case TEXT: {
          const at = text.indexOf('\x1b', i);
          if (at === -1) {
            i = n;
            break;
          }
          flush(at);
          this.state = ESCAPE;
          i = at + 1;
          break;
        }
        case ESCAPE: {
          const c = text.charCodeAt(i);
          if (c === 0x5b) {
            // ESC [
            this.state = CSI;
            this.params = '';
            i += 1;
          } else if (c === 0x5d || c === 0x50 || c === 0x58 || c === 0x5e || c === 0x5f) {
            // ESC ] (OSC), ESC P (DCS), ESC X (SOS), ESC ^ (PM), ESC _ (APC)
            this.state = STRING;
            i += 1;
          } else if (c >= 0x20 && c <= 0x2f) {
            this.state = ESCAPE_INTERMEDIATE;
            i += 1;
          } else if (c >= 0x30 && c <= 0x7e) {
            // A two-byte escape (ESC 7, ESC =, ESC M, a stray ST's ESC \\ ...).
            this.state = TEXT;
            i += 1;
          } else if (c === ESC) {
            // A lone ESC before another: dropped; the second one starts afresh.
            i += 1;
          } else if (c === CAN || c === SUB) {
            this.state = TEXT;
            i += 1;
          } else {
            // A lone ESC: dropped; what follows is text.
            this.state = TEXT;
          }
          start = i;
          break;
        }
        case ESCAPE_INTERMEDIATE: {
          const c = text.charCodeAt(i);
          if (c >= 0x20 && c <= 0x2f) {
            i += 1;
          } else if (c >= 0x30 && c <= 0x7e) {
            this.state = TEXT;
            i += 1;
          } else if (c === ESC) {
            this.state = ESCAPE;
            i += 1;
          } else {
            this.state = TEXT;
            if (c === CAN || c === SUB) i += 1;
          }
          start = i;
          break;
        }
        case CSI: {
          // Parameters (0x30-0x3f) and intermediates (0x20-0x2f), then a final byte.
          let j = i;
          let c = 0;
          while (j < n) {
            c = text.charCodeAt(j);
            if (c < 0x20 || c > 0x3f) break;
            j += 1;
          }
          if (this.params.length + (j - i) > CSI_MAX) {
            // Not a sequence any program sends: what follows the ESC [ is text.
            this.state = TEXT;
            this.params = '';
            start = i;
            break;
          }
          this.params += text.slice(i, j);
          i = j;
          if (i === n) break;
          if (c >= 0x40 && c <= 0x7e) {
            if (c === 0x6d) this.sgr(this.params);
            this.state = TEXT;
            i += 1;
          } else if (c === ESC) {
            this.state = ESCAPE;
            i += 1;
          } else {
            // Malformed: it ends here, and this character is text again (CAN and
            // SUB cancel it and go too).
            this.state = TEXT;
            if (c === CAN || c === SUB) i += 1;
          }
          this.params = '';
          start = i;
          break;
        }
        case STRING: {
          let j = i;
          let c = 0;
          while (j < n) {
            c = text.charCodeAt(j);
            if (c === BEL || c === ESC || c === LF || c === CAN || c === SUB) break;
            j += 1;
          }
          i = j;
          if (i === n) break;
          if (c === ESC) {
            this.state = STRING_ESCAPE;
            i += 1;
          } else {
            // BEL ends it; CAN and SUB cancel it; a string never ended is cut at the
            // end of its line, which is text.
            this.state = TEXT;
            if (c !== LF) i += 1;
          }
          start = i;
          break;
        }
        case STRING_ESCAPE: {
          if (text.charCodeAt(i) === 0x5c) {
            this.state = TEXT;
            i += 1;
          } else {
            // Another sequence begins: the string ended before its ESC.
            this.state = ESCAPE;
          }
          start = i;
          break;
        }
        default:
          this.state = TEXT;
      }
    }
    if (this.state === TEXT) flush(n);
    return runs;
  }

  /** Applies an SGR sequence's parameters (`1;31`, `38;5;208`, `38:2::255:0:0`). */
  sgr(params) {
    if (!/^[0-9;:]*$/.test(params)) return;
    const a = this.attrs;
    const list = params.split(';');
    for (let k = 0; k < list.length; k += 1) {
      const parts = list[k].split(':');
      const code = parts[0] === '' ? 0 : Number(parts[0]);
      if (code === 38 || code === 48) {
        let colour = null;
        if (parts.length > 1) {
          // Colon form: 38:5:n or 38:2:[colourspace]:r:g:b.
          const sub = parts.slice(1).map((p) => (p === '' ? 0 : Number(p)));
          if (sub[0] === 5) colour = palette16(clamp(sub[1]));
          else if (sub[0] === 2) {
            const rgb = sub.length >= 5 ? sub.slice(sub.length - 3) : sub.slice(1, 4);
            colour = nearest16(clamp(rgb[0]), clamp(rgb[1]), clamp(rgb[2]));
          }
        } else if (list[k + 1] === '5') {
          colour = palette16(clamp(Number(list[k + 2])));
          k += 2;
        } else if (list[k + 1] === '2') {
          colour = nearest16(clamp(Number(list[k + 2])), clamp(Number(list[k + 3])), clamp(Number(list[k + 4])));
          k += 4;
        }
        if (colour !== null) {
          if (code === 38) a.fg = colour;
          else a.bg = colour;
        }
        continue;
      }
      if (code === 0) Object.assign(a, plain());
      else if (code === 1) a.bold = true;
      else if (code === 2) a.dim = true;
      else if (code === 3) a.italic = true;
      else if (code === 4) a.underline = parts[1] !== '0';
      else if (code === 7) a.inverse = true;
      else if (code === 9) a.strike = true;
      else if (code === 21) a.underline = true;
      else if (code === 22) {
        a.bold = false;
        a.dim = false;
      } else if (code === 23) a.italic = false;
      else if (code === 24) a.underline = false;
      else if (code === 27) a.inverse = false;
      else if (code === 29) a.strike = false;
      else if (code >= 30 && code <= 37) a.fg = code - 30;
      else if (code === 39) a.fg = null;
      else if (code >= 40 && code <= 47) a.bg = code - 40;
      else if (code === 49) a.bg = null;
      else if (code >= 90 && code <= 97) a.fg = code - 90 + 8;
      else if (code >= 100 && code <= 107) a.bg = code - 100 + 8;
    }
    this.classes = classesOf(a);
  }
}

function clamp(v) {
  return Number.isFinite(v) ? Math.max(0, Math.min(255, v)) : 0;
}

/** The class names for a set of attributes. */
function classesOf(a) {
  const names = [];
  let fg = a.fg === null ? null : `ansi-fg-${a.fg}`;
  let bg = a.bg === null ? null : `ansi-bg-${a.bg}`;
  if (a.inverse) {
    // The colours swap; a default one becomes the other's default.
    fg = a.bg === null ? 'ansi-fg-inverse' : `ansi-fg-${a.bg}`;
    bg = a.fg === null ? 'ansi-bg-inverse' : `ansi-bg-${a.fg}`;
  }
  if (fg) names.push(fg);
  if (bg) names.push(bg);
  if (a.bold) names.push('ansi-bold');
  if (a.dim) names.push('ansi-dim');
  if (a.italic) names.push('ansi-italic');
  if (a.underline) names.push('ansi-underline');
  if (a.strike) names.push('ansi-strike');
  return names.join(' ');
}
