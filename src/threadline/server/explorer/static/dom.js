// Building the page without ever parsing strings as HTML: every value becomes a text node.

/** Create an element: h("button", {type: "button", onclick: f}, "Label", child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** The visible text of a (sanitised) HTML message: parsed inert, never inserted as HTML. */
export function htmlText(html) {
  const doc = new DOMParser().parseFromString(String(html), "text/html");
  return doc.body.textContent || "";
}

/** A labelled input: returns [label, input]. */
export function field(id, label, attrs = {}) {
  return [h("label", { for: id }, label), h("input", { id, name: id, ...attrs })];
}

/** A short local time for an ISO date. */
export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** A button that copies text, announcing the result. */
export function copyButton(text, label = "Copy") {
  const button = h("button", { type: "button", class: "copy" }, label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      const area = h("textarea", { readonly: true, "aria-label": "Copy this text" }, text);
      button.after(area);
      area.select();
      button.textContent = "Select and copy";
    }
  });
  return button;
}
