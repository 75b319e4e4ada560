// User page: segment and counters, the user's ratings newest first (paged), and their recommendations.

import { api, isAbort } from "../api.js";
import { errorNotice, movieHref, notice, titleOf, userHref } from "../components.js";
import { fill, h } from "../dom.js";
import { setViewer } from "../viewer.js";
import { recommendationsPanel } from "./recommendations.js";

const PAGE_SIZE = 20;

const label = (name) => name.replace(/_/g, " ").replace(/^./, (first) => first.toUpperCase());

function counterList(counters) {
  const entries = Object.entries(counters || {});
  if (!entries.length) return null;
  return h("dl", { class: "counters" }, entries.map(([name, value]) => h("div", {},
    h("dt", { text: label(name) }),
    h("dd", { text: typeof value === "number" && !Number.isInteger(value) ? value.toFixed(2) : String(value) }))));
}

function when(timestamp) {
  if (!timestamp) return "—";
  const date = new Date(timestamp * 1000);
  return h("time", { datetime: date.toISOString() }, date.toISOString().slice(0, 10));
}

function pager(profile) {
  const { offset, limit, total } = profile;
  const here = (start) => `${userHref(profile.user_id)}${start ? `?offset=${start}` : ""}`;
  const newer = offset > 0 ? h("a", { href: here(Math.max(0, offset - limit)), rel: "prev" }, "← Newer") : null;
  const older = offset + limit < total ? h("a", { href: here(offset + limit), rel: "next" }, "Older →") : null;
  const shown = total ? `Ratings ${offset + 1}–${Math.min(offset + limit, total)} of ${total}` : "No ratings";
  return h("nav", { class: "pager", "aria-label": "Rating pages" }, newer, h("span", { text: shown }), older);
}

function ratingsTable(profile) {
  if (!profile.ratings.length) {
    return notice("info", profile.total ? "No ratings on this page." : "This user has not rated anything yet.");
  }
  return h("div", { class: "table-scroll" }, h("table", { class: "ratings" },
    h("caption", { class: "visually-hidden", text: `Movies user ${profile.user_id} rated, newest first` }),
    h("thead", {}, h("tr", {}, ["Movie", "Rating", "Rated on"].map((name) => h("th", { scope: "col", text: name })))),
    h("tbody", {}, profile.ratings.map((entry) => h("tr", { "data-item-id": entry.item.item_id },
      h("td", {}, h("a", { href: movieHref(entry.item.item_id) }, titleOf(entry.item))),
      h("td", { text: entry.rating === null || entry.rating === undefined ? "—" : `${entry.rating} ★` }),
      h("td", {}, when(entry.timestamp)))))));
}

function profileHead(profile) {
  return [
    h("h1", {}, `User ${profile.user_id}`),
    h("p", { class: "meta" }, "Segment ", h("span", { class: "badge segment", text: profile.segment || "unknown" })),
    counterList(profile.counters),
  ];
}

export async function renderUser({ main, url, id, signal, setTitle }) {
  const offset = Math.max(0, Number.parseInt(url.searchParams.get("offset") || "0", 10) || 0);
  const head = h("div", { class: "user-head" }, h("p", { class: "loading", text: "Loading…" }));
  const ratings = h("section", { class: "user-ratings", "aria-labelledby": "ratings-heading" },
    h("h2", { id: "ratings-heading" }, "Ratings"), h("p", { class: "loading", text: "Loading…" }));
  setTitle(`User ${id}`);
  fill(main, head);

  const showProfile = async (at) => {
    const profile = await api.user(id, at, PAGE_SIZE, signal);
    fill(head, profileHead(profile));
    fill(ratings, h("h2", { id: "ratings-heading" }, "Ratings"), pager(profile), ratingsTable(profile));
    return profile;
  };

  let profile;
  try {
    profile = await showProfile(offset);
  } catch (error) {
    if (isAbort(error)) return;
    const missing = error.status === 404;
    setTitle(missing ? "User not found" : `User ${id}`);
    fill(head, h("h1", { text: missing ? "User not found" : `User ${id}` }), errorNotice(error, `user ${id}`),
      h("p", {}, h("a", { href: "/" }, "Choose another user")));
    return;
  }
  setViewer(profile.user_id);
  const panel = recommendationsPanel({
    userId: profile.user_id,
    signal,
    heading: "Recommended for you",
    onRated: () => showProfile(offset).catch((error) => {
      if (!isAbort(error)) fill(ratings, errorNotice(error, "the ratings"));
    }),
  });
  fill(main, head, h("div", { class: "user-columns" }, panel.section, ratings));
  await panel.load();
}
