// Movie page: details, tags and links from the catalogue, a rating form, and similar movies with their "why".

import { api, isAbort } from "../api.js";
import {
  degradedNotice, errorNotice, genreList, notice, ratingForm, ratingSummary, recommendationList, titleOf,
  userHref, yearOf,
} from "../components.js";
import { fill, h } from "../dom.js";
import { getViewer, parseUserId, setViewer } from "../viewer.js";

const SIMILAR_K = 12;
const LINK_NAMES = { movielens: "MovieLens", imdb: "IMDb", tmdb: "TMDB" };

function externalLinks(links) {
  const entries = Object.entries(links || {}).filter(([, href]) => typeof href === "string" && /^https?:\/\//.test(href));
  if (!entries.length) return null;
  return h("ul", { class: "links", "aria-label": "Elsewhere" }, entries.map(([name, href]) =>
    h("li", {}, h("a", { href, rel: "noopener noreferrer", target: "_blank" }, LINK_NAMES[name] || name,
      h("span", { class: "visually-hidden", text: " (opens in a new tab)" })))));
}

function tagList(tags) {
  if (!tags || !tags.length) return h("p", { class: "meta", text: "No tags yet." });
  return h("ul", { class: "chips tags", "aria-label": "Tags" }, tags.map((tag) => h("li", { text: tag })));
}

/** Rate as the current viewer, or ask for a user id when no user is chosen. */
function rateSection(item) {
  const viewer = getViewer();
  const saved = h("p", { class: "form-status", role: "status" });
  const who = viewer === null
    ? h("input", { id: "rate-user", type: "text", inputmode: "numeric", autocomplete: "off", required: true })
    : null;
  const form = ratingForm(viewer === null ? "Rating" : `Your rating (as user ${viewer})`, async (rating) => {
    const userId = viewer ?? parseUserId(who.value);
    if (userId === null) throw new Error("enter a user id first: a whole number of 1 or more");
    const reply = await api.rate(userId, item.item_id, rating);
    setViewer(userId);
    fill(saved, `Saved: user ${userId} rated ${titleOf(item)} ${rating} ★ (profile version ${reply.user_version}). `,
      h("a", { href: userHref(userId) }, `See user ${userId}'s recommendations`), ".");
    return "";
  });
  if (who) form.prepend(h("label", { for: "rate-user" }, "User id"), who);
  return h("section", { class: "rate-movie", "aria-labelledby": "rate-heading" },
    h("h2", { id: "rate-heading" }, "Rate this movie"), form, saved);
}

function details(item) {
  const year = yearOf(item);
  return h("article", { class: "movie" },
    h("h1", {}, titleOf(item), year ? h("span", { class: "year", text: ` (${year})` }) : null),
    h("p", { class: "meta" }, ratingSummary(item)),
    genreList(item.genres),
    h("h2", { text: "Tags" }), tagList(item.tags),
    externalLinks(item.links));
}

export async function renderMovie({ main, id, signal, setTitle }) {
  const top = h("div", { class: "movie-top" }, h("p", { class: "loading", text: "Loading…" }));
  const similar = h("div", { "aria-busy": "true" }, h("p", { class: "loading", text: "Loading…" }));
  fill(main, top, h("section", { class: "similar", "aria-labelledby": "similar-heading" },
    h("h2", { id: "similar-heading" }, "Similar movies"), similar));
  setTitle(`Movie ${id}`);

  const loadItem = api.item(id, signal).then(({ item }) => {
    setTitle(titleOf(item));
    fill(top, details(item), rateSection(item));
  }).catch((error) => {
    if (isAbort(error)) return;
    setTitle(error.status === 404 ? "Movie not found" : `Movie ${id}`);
    fill(top, h("h1", { text: error.status === 404 ? "Movie not found" : `Movie ${id}` }),
      errorNotice(error, `movie ${id}`), h("p", {}, h("a", { href: "/" }, "Back to the home page")));
  });

  const loadSimilar = api.similar(id, SIMILAR_K, signal).then((answer) => {
    fill(similar, degradedNotice(answer), recommendationList(answer, null, "No similar movies known."));
  }).catch((error) => {
    if (isAbort(error)) return;
    fill(similar, error.status === 404 ? notice("info", "No similar movies: this movie is not in the catalogue.")
      : errorNotice(error, "similar movies"));
  }).finally(() => similar.setAttribute("aria-busy", "false"));

  await Promise.all([loadItem, loadSimilar]);
}
