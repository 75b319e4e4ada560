// The user the site is viewed as: chosen on the home page or by opening a user page, kept in localStorage.

const KEY = "wren.viewer";
let memory = null; // used when localStorage is unavailable (private mode, disabled storage)
const listeners = new Set();

/** A positive integer id from user input, or null. */
export function parseUserId(text) {
  const value = String(text ?? "").trim();
  if (!/^[0-9]{1,18}$/.test(value)) return null;
  const id = Number(value);
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}

export function getViewer() {
  try {
    return parseUserId(window.localStorage.getItem(KEY));
  } catch {
    return memory;
  }
}

export function setViewer(userId) {
  memory = userId;
  try {
    if (userId === null) window.localStorage.removeItem(KEY);
    else window.localStorage.setItem(KEY, String(userId));
  } catch {
    // storage refused: the in-memory value still holds for this tab
  }
  for (const listener of listeners) listener(userId);
}

export function onViewerChange(listener) {
  listeners.add(listener);
}
