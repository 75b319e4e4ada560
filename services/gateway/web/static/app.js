// Entry point: routes the address to a page, keeps in-app links in the history, shows who the site is viewed as.

import { isAbort } from "./api.js";
import { errorNotice, userHref } from "./components.js";
import { fill, h } from "./dom.js";
import { getViewer, onViewerChange } from "./viewer.js";
import { renderHome } from "./views/home.js";
import { renderMovie } from "./views/movie.js";
import { renderUser } from "./views/user.js";

// The same addresses the gateway serves this page on (services/gateway/webapp.py PAGE_ROUTES).
const ROUTES = [
  [/^\/$/, renderHome],
  [/^\/movies\/([^/]+)$/, renderMovie],
  [/^\/users\/([^/]+)$/, renderUser],
];

let showing = null; // AbortController of the page on screen: leaving it cancels its requests

function match(pathname) {
  for (const [pattern, view] of ROUTES) {
    const found = pattern.exec(pathname);
    if (found) return { view, id: found[1] === undefined ? null : decodeURIComponent(found[1]) };
  }
  return null;
}

function setTitle(text) {
  document.title = text ? `${text} · Wren` : "Wren";
}

/** Shows `href` (same origin) without reloading; `replace` rewrites the current history entry. */
export function navigate(href, { replace = false } = {}) {
  const url = new URL(href, window.location.href);
  if (replace) window.history.replaceState(null, "", url);
  else window.history.pushState(null, "", url);
  window.scrollTo(0, 0);
  render(true);
}

async function render(moved) {
  if (showing) showing.abort();
  const controller = new AbortController();
  showing = controller;
  const main = document.getElementById("main");
  const url = new URL(window.location.href);
  const route = match(url.pathname);
  document.getElementById("search-q").value = url.pathname === "/" ? url.searchParams.get("q") || "" : "";
  if (!route) {
    setTitle("Page not found");
    fill(main, h("h1", { text: "Page not found" }), h("p", {}, "No page lives at this address. ",
      h("a", { href: "/" }, "Go to the home page"), "."));
    return;
  }
  fill(main, h("p", { class: "loading", text: "Loading…" }));
  try {
    await route.view({ main, url, id: route.id, signal: controller.signal, navigate, setTitle });
  } catch (error) {
    if (isAbort(error)) return;
    fill(main, h("h1", { text: "Something went wrong" }), errorNotice(error, "this page"));
  }
  if (moved && showing === controller) main.focus({ preventScroll: true });
}

function showViewer(userId) {
  const slot = document.getElementById("viewer");
  if (userId === null) fill(slot, "No user chosen");
  else fill(slot, "Viewing as ", h("a", { href: userHref(userId) }, `user ${userId}`));
}

function routable(anchor) {
  if (!anchor || anchor.target || anchor.hasAttribute("download")) return false;
  if (anchor.origin !== window.location.origin) return false;
  return match(anchor.pathname) !== null;
}

document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
    return;
  }
  const anchor = event.target instanceof Element ? event.target.closest("a[href]") : null;
  if (!routable(anchor)) return;
  event.preventDefault();
  navigate(anchor.href);
});

document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = document.getElementById("search-q").value.trim();
  navigate(text ? `/?${new URLSearchParams({ q: text })}` : "/");
});

window.addEventListener("popstate", () => render(true));
onViewerChange(showViewer);
showViewer(getViewer());
render(false);
