// The gateway's HTTP/JSON API as promises; every failure becomes an ApiError whose message can be shown as is.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status; // HTTP status, 0 when the gateway could not be reached
    this.code = code; // "NOT_FOUND", "INVALID_ARGUMENT", ... or "NETWORK"
  }
}

async function request(path, { method = "GET", body, signal } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      signal,
      headers: { Accept: "application/json", ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "NETWORK", "the gateway could not be reached; is `wren up` running?");
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch (error) {
    if (error.name === "AbortError") throw error;
    payload = null;
  }
  if (!response.ok) {
    const detail = payload && payload.error ? payload.error : {};
    throw new ApiError(response.status, detail.code || `HTTP_${response.status}`,
      detail.message || `the gateway answered ${response.status} ${response.statusText}`);
  }
  if (payload === null) throw new ApiError(response.status, "BAD_RESPONSE", "the gateway answered with no JSON body");
  return payload;
}

const query = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined)).toString();
const segment = (value) => encodeURIComponent(String(value));

export const api = {
  recommendations: (userId, k, signal) => request(`/v1/recommendations?${query({ user_id: userId, k })}`, { signal }),
  similar: (itemId, k, signal) => request(`/v1/items/${segment(itemId)}/similar?${query({ k })}`, { signal }),
  item: (itemId, signal) => request(`/v1/items/${segment(itemId)}`, { signal }),
  search: (text, k, signal) => request(`/v1/items?${query({ q: text, k })}`, { signal }),
  genres: (signal) => request("/v1/genres", { signal }),
  genreItems: (genre, sort, k, signal) =>
    request(`/v1/genres/${segment(genre)}/items?${query({ sort, k })}`, { signal }),
  user: (userId, offset, limit, signal) =>
    request(`/v1/users/${segment(userId)}?${query({ offset, limit })}`, { signal }),
  rate: (userId, itemId, rating) => request("/v1/events", {
    method: "POST",
    body: { user_id: userId, item_id: itemId, type: "rating", rating, timestamp: Math.floor(Date.now() / 1000) },
  }),
};

/** True when `error` only means the page moved on and the request was cancelled. */
export const isAbort = (error) => error && error.name === "AbortError";
