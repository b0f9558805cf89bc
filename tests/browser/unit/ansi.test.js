// The transcript's reading of escape sequences (crates/server/console/ansi.js) under
// node's test runner: SGR as classes, every other sequence dropped, the visible text
// kept whole, and any split of the output read as the whole.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { AnsiParser, nearest16, palette16 } from '../../../crates/server/console/ansi.js';

/** The runs of `chunks` read one after another by one parser. */
function read(...chunks) {
  const parser = new AnsiParser();
  return chunks.flatMap((chunk) => parser.push(chunk));
}

/** The visible text of runs. */
const text = (runs) => runs.map(([t]) => t).join('');

/** Each visible character with its classes: what the page shows, however it is split. */
const styled = (runs) => runs.flatMap(([t, classes]) => [...t].map((c) => `${c}|${classes}`));

test('text without escapes is one plain run; other control bytes stay', () => {
  assert.deepEqual(read('hello\n'), [['hello\n', '']]);
  assert.deepEqual(read('a\u0001b\u0007c\r\n\t'), [['a\u0001b\u0007c\r\n\t', '']]);
  assert.deepEqual(read(''), []);
});

test('SGR: colours, bright colours, bold, underline and their resets', () => {
  assert.deepEqual(read('\x1b[31mred\x1b[0m plain'), [['red', 'ansi-fg-1'], [' plain', '']]);
  assert.deepEqual(read('\x1b[1;4mbu\x1b[22mu\x1b[24mp'), [['bu', 'ansi-bold ansi-underline'], ['u', 'ansi-underline'], ['p', '']]);
  assert.deepEqual(read('\x1b[92;104mx\x1b[39my\x1b[49mz'), [['x', 'ansi-fg-10 ansi-bg-12'], ['y', 'ansi-bg-12'], ['z', '']]);
  assert.deepEqual(read('\x1b[2;3;9mx\x1b[mplain'), [['x', 'ansi-dim ansi-italic ansi-strike'], ['plain', '']]);
  assert.deepEqual(read('\x1b[4:3mcurly\x1b[4:0mnone'), [['curly', 'ansi-underline'], ['none', '']]);
  // A sequence that changes nothing does not split the run.
  assert.deepEqual(read('\x1b[31ma\x1b[31mb'), [['ab', 'ansi-fg-1']]);
});

test('SGR: 256 colours and true colour map to the nearest of the 16', () => {
  assert.equal(palette16(1), 1);
  assert.equal(palette16(196), 9); // (255, 0, 0)
  assert.equal(palette16(21), 4); // (0, 0, 255)
  assert.equal(palette16(231), 15); // white
  assert.equal(palette16(232), 0); // near-black grey
  assert.equal(nearest16(0, 0, 255), 4);
  assert.deepEqual(read('\x1b[38;5;196ma\x1b[48;2;0;0;250mb\x1b[38:2::0:255:0mc\x1b[0m'), [
    ['a', 'ansi-fg-9'],
    ['b', 'ansi-fg-9 ansi-bg-4'],
    ['c', 'ansi-fg-10 ansi-bg-4'],
  ]);
  // The parameters of an extended colour are not taken for codes of their own.
  assert.deepEqual(read('\x1b[38;5;1mx'), [['x', 'ansi-fg-1']]);
});

test('SGR: inverse swaps the colours, a default one for the other default', () => {
  assert.deepEqual(read('\x1b[7mx\x1b[31my\x1b[27mz'), [['x', 'ansi-fg-inverse ansi-bg-inverse'], ['y', 'ansi-fg-inverse ansi-bg-1'], ['z', 'ansi-fg-1']]);
});

test('every other sequence is dropped, with none of its bytes shown', () => {
  const cases = [
    ['\x1b[2K\x1b[1Gmoved', 'moved'],
    ['\x1b[?25lhidden cursor\x1b[?25h', 'hidden cursor'],
    ['\x1b[>4;2mkeys', 'keys'], // a private SGR-like sequence: not a colour
    ['\x1b]0;window title\x07after', 'after'],
    ['\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\', 'link'],
    ['\x1bP1$r0m\x1b\\dcs', 'dcs'],
    ['\x1b_apc\x07x', 'x'],
    ['\x1b(Bcharset \x1b7\x1b8saved \x1b=keypad', 'charset saved keypad'],
    ['\x1b\x1b[31mdouble', 'double'],
  ];
  for (const [input, shown] of cases) assert.equal(text(read(input)), shown, JSON.stringify(input));
});

test('a lone or malformed escape loses no visible text', () => {
  assert.equal(text(read('lone\x1b\nnext')), 'lone\nnext');
  assert.equal(text(read('\x1bé')), 'é');
  assert.equal(text(read('\x1b[12é')), 'é');
  assert.equal(text(read('\x1b[1\nline')), '\nline');
  // An OSC that never ends is cut at the end of its line.
  assert.equal(text(read('\x1b]0;no end\nthe next line\n')), '\nthe next line\n');
  // CAN cancels a sequence.
  assert.equal(text(read('\x1b[31\x18text')), 'text');
  // A "CSI" far longer than any program sends is text after its ESC [.
  const long = '1'.repeat(300);
  assert.equal(text(read(`\x1b[${long}`)), long.slice(0));
  // Markup is text like any other.
  assert.deepEqual(read('\x1b[1m<b>x</b>'), [['<b>x</b>', 'ansi-bold']]);
});

const SAMPLE =
  'plain \x1b[31mred\x1b[0m \x1b[1;4mbold-under\x1b[22;24m \x1b[38;5;208morange\x1b[39m ' +
  '\x1b]0;title\x07\x1b]8;;https://example.com/a?b=c\x1b\\link\x1b]8;;\x1b\\ \x1b[2K\x1b[1Gmoved\x1b[?25l ' +
  'lone\x1b\n\x1b(B\x1b7é\x1b[7minv\x1b[m\x1b[38;2;10;200;10mgreen\x1b[0m\x1bP+q\x1b\\end\n';

test('a sequence split across chunks anywhere reads as the whole', () => {
  const whole = styled(read(SAMPLE));
  assert.equal(whole.map((c) => c.split('|')[0]).join(''), 'plain red bold-under orange link moved lone\néinvgreenend\n');
  for (let i = 0; i <= SAMPLE.length; i += 1) {
    assert.deepEqual(styled(read(SAMPLE.slice(0, i), SAMPLE.slice(i))), whole, `split at ${i}`);
  }
  for (let i = 0; i < SAMPLE.length; i += 7) {
    for (let j = i; j <= SAMPLE.length; j += 3) {
      assert.deepEqual(styled(read(SAMPLE.slice(0, i), SAMPLE.slice(i, j), SAMPLE.slice(j))), whole, `split at ${i}, ${j}`);
    }
  }
  assert.deepEqual(styled(read(...SAMPLE)), whole, 'one character at a time');
});

test('4 MiB of coloured output is read in well under a second', () => {
  const line = '\x1b[32m+ added line\x1b[0m \x1b[1mbold\x1b[0m and plain text to the end of the line\n';
  const chunk = line.repeat(Math.ceil(8192 / line.length));
  const chunks = Array.from({ length: Math.ceil((4 << 20) / chunk.length) }, () => chunk);
  const parser = new AnsiParser();
  const started = performance.now();
  let shown = 0;
  for (const c of chunks) for (const [t] of parser.push(c)) shown += t.length;
  const took = performance.now() - started;
  assert.equal(shown, chunks.length * chunk.length - chunks.length * (chunk.length / line.length) * '\x1b[32m\x1b[0m\x1b[1m\x1b[0m'.length);
  assert.ok(took < 1000, `took ${took.toFixed(0)} ms`);
});
