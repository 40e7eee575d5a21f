// confsync admin console: progressive enhancement only. Every page works
// without this script; with it, the spaces picker becomes a type-ahead
// combobox and sync progress refreshes in place.
"use strict";
document.documentElement.classList.add("js");

// Sync progress: a region marked data-poll is fetched again every two
// seconds while it holds something in progress (data-busy), unless the
// person is using a menu or a control inside it.
for (const region of document.querySelectorAll("[data-poll]")) {
  const refresh = async () => {
    if (!region.querySelector("[data-busy]")) return;
    const busyWithIt = region.querySelector("details[open]") || region.contains(document.activeElement);
    if (!busyWithIt) {
      try {
        const answer = await fetch(region.dataset.poll, { credentials: "same-origin", headers: { accept: "text/html" } });
        // Signed out meanwhile: the page itself goes to sign-in.
        if (answer.redirected) { location.reload(); return; }
        if (answer.ok) region.innerHTML = await answer.text();
      } catch (_) { /* the next round tries again */ }
    }
    setTimeout(refresh, 2000);
  };
  setTimeout(refresh, 2000);
}

// The spaces picker: an ARIA combobox over the spaces the site offers,
// first 20 in alphabetical order, narrowed as the admin types.
for (const combo of document.querySelectorAll("[data-combo]")) {
  const input = combo.querySelector("input[role=combobox]");
  const list = combo.querySelector("[role=listbox]");
  const chosen = document.getElementById(combo.dataset.tags);
  const fallback = document.getElementById(combo.dataset.fallback);
  if (fallback) fallback.remove();
  combo.hidden = false;
  let options = [];
  let active = -1;
  let timer = null;
  let asked = 0;
  // Focus given back by the script (after a choice or a removal) does not
  // open the list again: the person sees the tags they changed.
  let quiet = false;
  const refocus = () => { quiet = true; input.focus(); setTimeout(() => { quiet = false; }, 0); };

  const chosenKeys = () => [...chosen.querySelectorAll("input[name=space]")].map((i) => i.value);
  const close = () => { list.hidden = true; input.setAttribute("aria-expanded", "false"); input.removeAttribute("aria-activedescendant"); active = -1; };
  const highlight = (i) => {
    const items = list.querySelectorAll("[role=option]");
    items.forEach((el, n) => el.setAttribute("aria-selected", String(n === i)));
    active = i;
    if (items[i]) { input.setAttribute("aria-activedescendant", items[i].id); items[i].scrollIntoView({ block: "nearest" }); }
  };
  const render = () => {
    list.replaceChildren();
    const taken = chosenKeys();
    options = options.filter((o) => !taken.includes(o.key));
    if (!options.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "No matching spaces";
      list.append(li);
    }
    options.forEach((o, n) => {
      const li = document.createElement("li");
      li.id = `space-option-${n}`;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      li.dataset.key = o.key;
      li.textContent = `${o.name} (${o.key})`;
      li.addEventListener("mousedown", (e) => { e.preventDefault(); pick(o); });
      list.append(li);
    });
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    active = -1;
  };
  const search = async () => {
    const ticket = ++asked;
    const url = new URL(combo.dataset.combo, location.href);
    url.searchParams.set("q", input.value);
    try {
      const answer = await fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } });
      if (!answer.ok || ticket !== asked) return;
      options = await answer.json();
      render();
    } catch (_) { /* typing again retries */ }
  };
  const pick = (o) => {
    if (chosenKeys().includes(o.key)) return;
    const li = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = `${o.name} (${o.key})`;
    const hidden = document.createElement("input");
    hidden.type = "hidden"; hidden.name = "space"; hidden.value = o.key;
    const remove = document.createElement("button");
    remove.type = "button"; remove.textContent = "×";
    remove.setAttribute("aria-label", `Remove ${o.name}`);
    remove.addEventListener("click", () => { li.remove(); refocus(); });
    li.append(label, hidden, remove);
    chosen.append(li);
    input.value = "";
    close();
    refocus();
  };
  input.addEventListener("focus", () => { if (quiet) quiet = false; else search(); });
  input.addEventListener("click", () => { if (list.hidden) search(); });
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 120); });
  input.addEventListener("blur", () => setTimeout(close, 100));
  input.addEventListener("keydown", (e) => {
    const items = list.querySelectorAll("[role=option]");
    if (e.key === "ArrowDown") { e.preventDefault(); if (list.hidden) search(); else highlight(Math.min(active + 1, items.length - 1)); }
    else if (e.key === "ArrowUp") { e.preventDefault(); highlight(Math.max(active - 1, 0)); }
    else if (e.key === "Enter") { if (!list.hidden && active >= 0 && options[active]) { e.preventDefault(); pick(options[active]); } }
    else if (e.key === "Escape") { close(); }
  });
  chosen.addEventListener("click", (e) => {
    const button = e.target.closest("button");
    if (button) { button.closest("li").remove(); refocus(); }
  });
}
