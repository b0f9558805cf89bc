// A pty worker's terminal: xterm.js (vendored, loaded only when a terminal is shown)
// painting the snapshot's screen, then the worker's output; keystrokes and paste go
// out as input frames, and the worker's size follows the window for those who may
// operate it. Viewers see the worker's own size and cannot type.

const XTERM = '/assets/vendor/xterm-6.0.0/xterm.mjs';
const FIT = '/assets/vendor/addon-fit-0.11.0/addon-fit.mjs';
const RESIZE_DEBOUNCE_MS = 120;

let modules = null;
function load() {
  modules ??= Promise.all([import(XTERM), import(FIT)]);
  return modules;
}

const THEME = {
  background: '#0d1117',
  foreground: '#e6edf3',
  cursor: '#7ee0c9',
  cursorAccent: '#0d1117',
  selectionBackground: '#2f4a63',
  black: '#484f58',
  red: '#ff7b72',
  green: '#3fb950',
  yellow: '#d29922',
  blue: '#58a6ff',
  magenta: '#bc8cff',
  cyan: '#39c5cf',
  white: '#b1bac4',
  brightBlack: '#6e7681',
  brightRed: '#ffa198',
  brightGreen: '#56d364',
  brightYellow: '#e3b341',
  brightBlue: '#79c0ff',
  brightMagenta: '#d2a8ff',
  brightCyan: '#56d4dd',
  brightWhite: '#f0f6fc',
};

/**
 * Opens a terminal in `container`. `interactive`: keystrokes go to `onData(text)` and
 * the size follows the container, reported through `onResize(cols, rows)`.
 */
export async function openTerminal(container, { interactive, onData, onResize, onLeave }) {
  const [{ Terminal }, { FitAddon }] = await load();
  const term = new Terminal({
    cursorBlink: interactive,
    disableStdin: !interactive,
    fontFamily: 'ui-monospace, "DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, monospace',
    fontSize: 14,
    lineHeight: 1.15,
    scrollback: 5000,
    theme: THEME,
    screenReaderMode: false,
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(container);
  let lastSequence = 0;
  let resizeTimer = null;
  let disposed = false;

  // Ctrl+] leaves the terminal (no keyboard trap): it is not sent, and `onLeave`
  // moves the focus out. Telnet's escape key, which programs seldom need.
  term.attachCustomKeyEventHandler((event) => {
    if (event.type === 'keydown' && event.ctrlKey && !event.altKey && !event.metaKey && event.code === 'BracketRight') {
      event.preventDefault();
      onLeave?.();
      return false;
    }
    return true;
  });
  let inputEnabled = interactive;
  // The worker's size as last heard (snapshot, `resized`) or asked for. Another
  // page on the same worker may size it to its own window; the size follows the
  // page typed into last (tmux's "latest" policy): a key here first puts this
  // page's size back, so what the program draws fits the terminal it is typed in.
  let workerSize = null;
  const askSize = (cols, rows) => {
    workerSize = { cols, rows };
    onResize?.(cols, rows);
  };
  if (interactive) {
    term.onData((data) => {
      if (!inputEnabled) return;
      if (workerSize && (workerSize.cols !== term.cols || workerSize.rows !== term.rows)) {
        clearTimeout(resizeTimer);
        askSize(term.cols, term.rows);
      }
      onData?.(data);
    });
    term.onResize(({ cols, rows }) => {
      clearTimeout(resizeTimer);
      // An ended worker is not resized (the page's layout changes as it ends).
      resizeTimer = setTimeout(() => {
        if (inputEnabled) askSize(cols, rows);
      }, RESIZE_DEBOUNCE_MS);
    });
  }
  const observer = new ResizeObserver(() => {
    if (!disposed && interactive) safeFit();
  });
  observer.observe(container);

  function safeFit() {
    try {
      fit.fit();
    } catch {
      // Not laid out yet (hidden); the next resize fits it.
    }
  }

  return {
    /** Paints a snapshot's `terminal` object on a clean terminal. */
    paint(snapshot, sequence) {
      term.reset();
      if (snapshot) {
        workerSize = { cols: snapshot.cols, rows: snapshot.rows };
        term.resize(snapshot.cols, snapshot.rows);
        let text = snapshot.screen ?? '';
        if (snapshot.alternate && !text.includes('\x1b[?1049h')) text = `\x1b[?1049h${text}`;
        // The screen ends with the cursor where it is (a pending wrap and origin
        // mode included); moving it again by `cursor` would lose both.
        term.write(text);
      }
      lastSequence = sequence ?? 0;
      if (interactive) safeFit();
    },
    /** Writes an output event; false for a duplicate. */
    output(event) {
      if (event.sequence <= lastSequence) return false;
      lastSequence = event.sequence;
      term.write(event.text);
      return true;
    },
    /** The worker was resized (by someone else, or as asked). */
    resized(cols, rows) {
      workerSize = { cols, rows };
      if (!interactive && (term.cols !== cols || term.rows !== rows)) term.resize(cols, rows);
    },
    /** A dim line of the console's own, such as "[exited with code 0]". */
    note(text) {
      term.write(`\r\n\x1b[2m[${text}]\x1b[0m\r\n`);
    },
    size() {
      return { cols: term.cols, rows: term.rows };
    },
    focus() {
      term.focus();
    },
    /** Takes keys (an operator's running worker) or not (the worker ended). */
    setInputEnabled(enabled) {
      inputEnabled = interactive && enabled;
      term.options.disableStdin = !inputEnabled;
      term.options.cursorBlink = inputEnabled;
    },
    dispose() {
      disposed = true;
      clearTimeout(resizeTimer);
      observer.disconnect();
      term.dispose();
    },
  };
}
