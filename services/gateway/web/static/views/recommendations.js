// "Recommended for you": a user's list that can be rated from, and that drops a rated movie at once.

import { api, isAbort } from "../api.js";
import { answerMeta, degradedNotice, errorNotice, recommendationList, titleOf } from "../components.js";
import { fill, h } from "../dom.js";

export const RECOMMENDED_K = 10;

/**
 * A section showing the recommendations of `userId`. Rating one of them posts a `rating` event, removes the
 * card at once, then shows the gateway's new list (the gateway drops the user's cached list on an event) and
 * calls `onRated(item, rating)`.
 */
export function recommendationsPanel({ userId, heading, signal, onRated }) {
  const title = h("h2", { id: "recommended-heading", tabindex: "-1" }, heading);
  const announce = h("p", { class: "visually-hidden", role: "status", "aria-live": "polite" });
  const body = h("div", { class: "panel-body", "aria-busy": "true" }, h("p", { class: "loading", text: "Loading…" }));
  const section = h("section", { class: "recommended", "aria-labelledby": "recommended-heading" },
    title, announce, body);

  // Movies rated here stay off the list even if an answer was cached before the rating (e.g. by another gateway
  // replica behind a load balancer, which this gateway's event did not reach).
  const rated = new Set();

  async function rate(item, rating) {
    const reply = await api.rate(userId, item.item_id, rating);
    rated.add(item.item_id);
    const card = body.querySelector(`.card[data-item-id="${CSS.escape(String(item.item_id))}"]`);
    if (card) card.remove();
    title.focus({ preventScroll: true });
    announce.textContent = `Rated ${titleOf(item)} ${rating} stars. Updating the recommendations.`;
    await load();
    announce.textContent = `Rated ${titleOf(item)} ${rating} stars. The recommendations are updated.`;
    if (onRated) onRated(item, rating, reply);
    return "";
  }

  async function load() {
    body.setAttribute("aria-busy", "true");
    try {
      const answer = await api.recommendations(userId, RECOMMENDED_K, signal);
      answer.items = answer.items.filter((item) => !rated.has(item.item_id));
      fill(body, degradedNotice(answer), answerMeta(answer),
        recommendationList(answer, rate, "Nothing to recommend for this user right now."));
    } catch (error) {
      if (isAbort(error)) return;
      fill(body, errorNotice(error, "the recommendations"));
    } finally {
      body.setAttribute("aria-busy", "false");
    }
  }

  return { section, load };
}
