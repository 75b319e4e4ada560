// Pieces every page uses: notices, movie tiles, recommendation cards with their "why", the rating form.

import { h } from "./dom.js";

// What each recall channel (an item's `sources`) means, in words a visitor understands.
const CHANNELS = {
  embedding: "close in embedding space to movies this user liked",
  item2item: "similar to a movie this user rated recently",
  content: "matches this user's favourite genres and tags",
  popularity: "popular with everyone",
  segment: "popular with users like this one (cold-start segment)",
  cf: "collaborative filtering: users with similar taste liked it",
  covisit: "often watched right after this user's recent movies",
  ease: "item graph (EASE) learnt from everyone's ratings",
  fallback_popular: "popular list served because recall was unavailable",
  fallback_genre: "same genre, served because recall was unavailable",
};

// The same channels when the list is of movies similar to one movie (the answer names its item_id).
const ITEM_CHANNELS = {
  embedding: "close to this movie in embedding space (people who liked one liked the other)",
  fallback_genre: "shares this movie's genres, served because recall was unavailable",
};

const REASONS = {
  features_unavailable: "the feature tier did not answer, so this user was treated as new",
  recall_unavailable: "the recall tier did not answer, so a popular list was served",
  ranking_unavailable: "the ranking model did not answer, so the list is in recall order",
  ranking_timeout: "the ranking model was too slow, so the list is in recall order",
};

const RATINGS = ["5", "4.5", "4", "3.5", "3", "2.5", "2", "1.5", "1", "0.5"];

export function notice(kind, ...text) {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, ...text);
}

/** The API's error as a sentence: what failed, the server's message and its code. */
export function errorNotice(error, what) {
  const lead = error.status === 404 ? "Not found" : `Could not load ${what}`;
  return notice("error", `${lead}: ${error.message}`, h("span", { class: "code", text: ` (${error.code})` }));
}

/** A visible warning when the gateway had to fall back; null for a full answer. */
export function degradedNotice(answer) {
  if (!answer.degraded) return null;
  const reasons = String(answer.degraded_reason || "unknown").split(",").filter(Boolean);
  return notice("warn", h("strong", { text: "Degraded answer. " }),
    reasons.map((reason) => REASONS[reason] || reason).join("; ") + ".",
    h("span", { class: "code", text: ` (degraded_reason: ${answer.degraded_reason || "unknown"})` }));
}

export const movieHref = (itemId) => `/movies/${encodeURIComponent(itemId)}`;
export const userHref = (userId) => `/users/${encodeURIComponent(userId)}`;

/** The year from the item, or from a MovieLens title ending in "(1999)". */
export function yearOf(item) {
  if (item.year) return item.year;
  const match = /\((\d{4})\)\s*$/.exec(item.title || "");
  return match ? Number(match[1]) : null;
}

/**
 * A title as people write it: without the trailing "(1999)" MovieLens appends (the year is shown on its own),
 * and with a trailing English article put back in front ("Matrix, The" -> "The Matrix").
 */
export function titleOf(item) {
  const title = item.title || `Movie ${item.item_id}`;
  const bare = title.replace(/\s*\(\d{4}\)\s*$/, "") || title;
  const article = /^(.+), (The|A|An)$/.exec(bare);
  return article ? `${article[2]} ${article[1]}` : bare;
}

/** A coloured block standing in for a poster (MovieLens has none): the title's initial on a hue from the id. */
export function poster(item) {
  const initial = titleOf(item).replace(/^(the|a|an)\s+/i, "").charAt(0).toUpperCase() || "?";
  return h("div", { class: `poster hue-${Number(item.item_id) % 12}`, "aria-hidden": "true" }, initial);
}

export function ratingSummary(item) {
  if (item.rating_mean === null || item.rating_mean === undefined || !item.rating_count) return "no ratings yet";
  const count = item.rating_count === 1 ? "1 rating" : `${item.rating_count.toLocaleString("en")} ratings`;
  return `★ ${Number(item.rating_mean).toFixed(1)} · ${count}`;
}

/** A small card for an ItemSummary: genre rows, search results, a user's ratings. */
export function movieTile(item) {
  const year = yearOf(item);
  return h("li", { class: "tile", "data-item-id": item.item_id },
    poster(item),
    h("a", { class: "title", href: movieHref(item.item_id) }, titleOf(item)),
    h("p", { class: "meta" }, [year, ratingSummary(item)].filter(Boolean).join(" · ")));
}

export function genreList(genres) {
  if (!genres || genres.length === 0) return null;
  return h("ul", { class: "chips", "aria-label": "Genres" }, genres.map((genre) => h("li", { text: genre })));
}

const score = (value) => (value === null || value === undefined ? "not ranked" : Number(value).toFixed(4));

/** The "why" of one recommended item: its recall channels, its scores, the model and whether it was cached. */
export function whyDetails(item, answer) {
  const sources = item.sources || [];
  const channels = answer.item_id ? { ...CHANNELS, ...ITEM_CHANNELS } : CHANNELS;
  const model = answer.model_version
    ? `${answer.model_version}${answer.variant ? ` (variant ${answer.variant})` : ""}`
    : "none: recall order only";
  const served = Object.entries(answer.served_by || {}).map(([tier, by]) => `${tier} ${by}`).join(", ");
  return h("details", { class: "why" },
    h("summary", {}, "Why this movie?"),
    h("dl", {},
      h("dt", { text: "Recall channels" }),
      h("dd", {}, sources.length
        ? h("ul", {}, sources.map((source) => h("li", {},
          h("code", { text: source }), channels[source] ? ` ${channels[source]}` : "")))
        : "none reported"),
      h("dt", { text: "Scores" }),
      h("dd", {}, `final ${score(item.score)} · ranking ${score(item.rank_score)} · recall ${score(item.recall_score)}`),
      h("dt", { text: "Model" }),
      h("dd", {}, model),
      h("dt", { text: "Cached" }),
      h("dd", {}, item.cached ? "yes, from the gateway's result cache" : "no, computed for this request"),
      served ? [h("dt", { text: "Served by" }), h("dd", { class: "code" }, served)] : null));
}

let formCount = 0;

/**
 * A labelled rating select and a button; `onRate(rating)` returns a promise. While it runs the button is
 * disabled; a failure is shown beside the form as text.
 */
export function ratingForm(label, onRate) {
  const id = `rating-${++formCount}`;
  const select = h("select", { id, name: "rating" },
    RATINGS.map((value) => h("option", { value, selected: value === "4" }, `${value} ★`)));
  const button = h("button", { type: "submit" }, "Rate");
  const status = h("span", { class: "form-status", role: "status" });
  const form = h("form", { class: "rate" }, h("label", { for: id }, label), select, button, status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    status.textContent = "Saving…";
    try {
      status.textContent = (await onRate(Number(select.value))) || "";
    } catch (error) {
      status.textContent = `Not saved: ${error.message}`;
      status.classList.add("error");
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

/**
 * One recommended (or similar) movie: tile plus genres, its "why" and, when `onRate` is given, a rating form.
 */
export function recommendationCard(item, answer, onRate) {
  const year = yearOf(item);
  return h("li", { class: "card", "data-item-id": item.item_id },
    poster(item),
    h("div", { class: "card-body" },
      h("a", { class: "title", href: movieHref(item.item_id) }, titleOf(item)),
      year ? h("p", { class: "meta", text: String(year) }) : null,
      genreList(item.genres),
      whyDetails(item, answer),
      onRate ? ratingForm(h("span", {}, "Your rating", h("span", { class: "visually-hidden" }, ` of ${titleOf(item)}`)),
        (rating) => onRate(item, rating)) : null));
}

/** The list of an answer's items as cards, or a sentence when it is empty. */
export function recommendationList(answer, onRate, empty) {
  if (!answer.items.length) return notice("info", empty);
  return h("ol", { class: "cards" }, answer.items.map((item) => recommendationCard(item, answer, onRate)));
}

/** One line about where an answer came from: model, variant, cache. */
export function answerMeta(answer) {
  const parts = [];
  if (answer.model_version) parts.push(`ranked by ${answer.model_version}`);
  if (answer.variant) parts.push(`A/B variant ${answer.variant}`);
  const cached = answer.items.filter((item) => item.cached).length;
  if (answer.items.length) parts.push(cached ? "from the gateway's cache" : "freshly computed");
  return parts.length ? h("p", { class: "answer-meta", text: parts.join(" · ") }) : null;
}
