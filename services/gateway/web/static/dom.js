// Building DOM nodes from data without innerHTML: text always goes in as text, never as markup.

/**
 * h("a", {href: "/", class: "brand"}, "Wren") -> <a href="/" class="brand">Wren</a>.
 * Attributes: `class`, `text`, `on<event>` (listener), booleans (set when true), anything else as an attribute.
 * Children: nodes, strings, numbers, arrays of those; null/undefined/false are skipped.
 */
export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "text") {
      node.textContent = String(value);
    } else if (value === true) {
      node.setAttribute(name, "");
    } else {
      node.setAttribute(name, String(value));
    }
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces every child of `node` with `children`. */
export function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}
