// Home: choose a user, their recommendations, title search results, and rows of movies per genre.

import { api, isAbort } from "../api.js";
import { errorNotice, movieTile, notice, userHref } from "../components.js";
import { fill, h } from "../dom.js";
import { getViewer, parseUserId, setViewer } from "../viewer.js";
import { recommendationsPanel } from "./recommendations.js";

const ROW_K = 12;
const SEARCH_K = 24;
const SUGGESTED_USERS = [1, 2, 3, 7, 42];
const SORTS = { rating: "Top rated", popularity: "Most popular" };

function homeHref(params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, value]) => value)).toString();
  return query ? `/?${query}` : "/";
}

function userPicker(current, navigate) {
  const input = h("input", {
    id: "user-id", name: "user", type: "text", inputmode: "numeric", autocomplete: "off", required: true,
    value: current ?? "", "aria-describedby": "user-id-hint",
  });
  const problem = h("p", { class: "form-status error", role: "alert" });
  const form = h("form", { class: "user-picker", action: "/", method: "get" },
    h("label", { for: "user-id" }, "User id"), input,
    h("button", { type: "submit" }, "Show recommendations"), problem);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const userId = parseUserId(input.value);
    if (userId === null) {
      problem.textContent = "Enter a user id: a whole number of 1 or more.";
      input.focus();
      return;
    }
    setViewer(userId);
    navigate(homeHref({ user: userId }));
  });
  return h("section", { class: "intro", "aria-labelledby": "pick-heading" },
    h("h2", { id: "pick-heading" }, "Whose recommendations?"),
    h("p", { id: "user-id-hint" }, "Type a MovieLens user id, or pick one: ",
      SUGGESTED_USERS.map((id, index) => [index ? ", " : "", h("a", { href: homeHref({ user: id }) }, `user ${id}`)]),
      "."),
    form);
}

function searchSection(text, signal) {
  const body = h("div", { "aria-busy": "true" }, h("p", { class: "loading", text: "Searching…" }));
  const section = h("section", { class: "search-results", "aria-labelledby": "search-heading" },
    h("h2", { id: "search-heading" }, `Movies matching “${text}”`), body);
  const load = async () => {
    try {
      const answer = await api.search(text, SEARCH_K, signal);
      fill(body, answer.items.length
        ? h("ul", { class: "grid" }, answer.items.map(movieTile))
        : notice("info", `No movie title matches “${text}”.`));
    } catch (error) {
      if (!isAbort(error)) fill(body, errorNotice(error, "the search results"));
    } finally {
      body.setAttribute("aria-busy", "false");
    }
  };
  return { section, load };
}

function genreRow(genre, sort, signal) {
  const id = `genre-${genre.genre.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  const body = h("div", { class: "row-body" }, h("p", { class: "loading", text: "Loading…" }));
  const section = h("section", { class: "genre-row", "aria-labelledby": id, "data-genre": genre.genre },
    h("h3", { id }, genre.genre, h("span", { class: "count", text: ` ${genre.item_count} movies` })), body);
  const load = async () => {
    try {
      const answer = await api.genreItems(genre.genre, sort, ROW_K, signal);
      fill(body, answer.items.length ? h("ul", { class: "row" }, answer.items.map(movieTile))
        : notice("info", "No movies in this genre."));
    } catch (error) {
      if (!isAbort(error)) fill(body, errorNotice(error, `the ${genre.genre} movies`));
    }
  };
  return { section, load };
}

function genreSection(sort, signal) {
  const rows = h("div", { class: "rows" }, h("p", { class: "loading", text: "Loading…" }));
  const sorts = h("p", { class: "sort" }, "Sort: ", Object.entries(SORTS).map(([value, label], index) => [
    index ? " · " : "",
    h("a", { href: homeHref({ sort: value === "rating" ? "" : value }), "aria-current": value === sort ? "true" : null },
      label)]));
  const section = h("section", { class: "genres", "aria-labelledby": "genres-heading" },
    h("h2", { id: "genres-heading" }, "Browse by genre"), sorts, rows);
  const load = async () => {
    let genres;
    try {
      genres = (await api.genres(signal)).genres;
    } catch (error) {
      if (!isAbort(error)) fill(rows, errorNotice(error, "the genres"));
      return;
    }
    const built = genres.map((genre) => genreRow(genre, sort, signal));
    fill(rows, built.length ? built.map((row) => row.section) : notice("info", "The catalogue has no genres."));
    await Promise.all(built.map((row) => row.load()));
  };
  return { section, load };
}

export async function renderHome({ main, url, signal, navigate, setTitle }) {
  const asked = url.searchParams.get("user");
  const userId = asked !== null ? asked.trim() : getViewer();
  if (asked !== null && parseUserId(asked) !== null) setViewer(parseUserId(asked));
  const text = (url.searchParams.get("q") || "").trim();
  const sort = url.searchParams.get("sort") === "popularity" ? "popularity" : "rating";
  setTitle(text ? `Search: ${text}` : "");

  const search = text ? searchSection(text, signal) : null;
  const genres = genreSection(sort, signal);
  const recommended = userId !== null && userId !== "" ? recommendationsPanel({
    userId,
    signal,
    heading: ["Recommended for you ", h("a", { class: "heading-link", href: userHref(userId) }, `(user ${userId})`)],
  }) : null;

  fill(main,
    h("h1", { text: "Find your next movie" }),
    userPicker(userId, navigate),
    search ? search.section : null,
    recommended
      ? h("div", { class: "home-columns" }, recommended.section, genres.section)
      : [notice("info", "Choose a user above to see what Wren recommends for them."), genres.section]);
  await Promise.all([search, recommended, genres].filter(Boolean).map((part) => part.load()));
}
