/* The topology page: pan and zoom the graph (svg-pan-zoom), find a component by name, and
 * open a change set's graph on what it changes. Wired by ids and data- attributes only, no
 * inline script or handler, so it runs under a Content-Security-Policy without
 * 'unsafe-inline'. The SVG arrives by htmx (templates/topology/_svg.html).
 */
(function () {
  "use strict";

  // Graphviz draws node labels 10 units high: below this zoom they are under 12 CSS px.
  const LEGIBLE = 1.2;
  // Graphviz's own size (its units are points: 4/3 CSS px); no need to open any larger.
  const NATURAL = 4 / 3;
  const MAX_ZOOM = 4;
  const PAN_STEP = 80;
  const MARGIN = 12;

  const canvas = document.getElementById("topology-graph");
  if (!canvas) return;
  const toolbar = document.getElementById("topology-toolbar");
  const search = document.getElementById("topology-search");
  const find = document.getElementById("topology-find");
  const status = document.getElementById("topology-find-status");

  let viewer = null;
  let home = null; // {zoom, pan} the graph opened at, for Reset
  let visiting = { key: "", nodes: [], index: -1 }; // the matches or changes being stepped through

  const clamp = (value, low, high) => Math.min(Math.max(value, low), high);
  const nameOf = (node) => (node.querySelector("title") || {}).textContent || "";

  function components() {
    return Array.from(canvas.querySelectorAll("g.node:not(.legend)"));
  }

  // Boxes in graph units (those of the pan-zoom viewport), measured against the viewport as
  // drawn: the library moves the drawing on the next animation frame, its state at once.
  function inGraph(element) {
    const m = canvas.querySelector(".svg-pan-zoom_viewport").getScreenCTM();
    const r = element.getBoundingClientRect();
    return { x: (r.left - m.e) / m.a, y: (r.top - m.f) / m.d, width: r.width / m.a, height: r.height / m.d };
  }

  function union(elements) {
    const boxes = elements.map(inGraph);
    if (!boxes.length) return null;
    const x = Math.min(...boxes.map((b) => b.x));
    const y = Math.min(...boxes.map((b) => b.y));
    const right = Math.max(...boxes.map((b) => b.x + b.width));
    const bottom = Math.max(...boxes.map((b) => b.y + b.height));
    return { x, y, width: right - x, height: bottom - y };
  }

  // Zooms in CSS pixels per graph unit ("real"); the library's own are relative to the fit.
  function realZoom() {
    return viewer.getSizes().realZoom;
  }

  function frame() {
    const sizes = viewer.getSizes();
    return { width: sizes.width - 2 * MARGIN, height: sizes.height - 2 * MARGIN };
  }

  function show(box, real) {
    viewer.zoom((real / realZoom()) * viewer.getZoom());
    real = realZoom(); // within the zoom limits
    const sizes = viewer.getSizes();
    viewer.pan({
      x: sizes.width / 2 - (box.x + box.width / 2) * real,
      y: sizes.height / 2 - (box.y + box.height / 2) * real,
    });
  }

  function zoomToShow(box) {
    const { width, height } = frame();
    return Math.min(width / box.width, height / box.height);
  }

  const centre = (box) => ({ x: box.x + box.width / 2, y: box.y + box.height / 2 });
  const changes = () => components().filter((n) => n.classList.contains("changed"));

  // Where the graph opens: a change set on its changes (and their neighbours, if they fit
  // at a legible size); any other graph as a whole if that is legible, else legible from
  // its top left corner.
  function open() {
    const fitted = realZoom();
    const changed = changes();
    if (canvas.dataset.openOn === "changes" && changed.length) {
      openOn(changed);
    } else if (fitted < LEGIBLE) {
      const graph = inGraph(canvas.querySelector("g.graph"));
      viewer.zoom(LEGIBLE / fitted);
      viewer.pan({ x: MARGIN - graph.x * realZoom(), y: MARGIN - graph.y * realZoom() });
    } else if (fitted > NATURAL) {
      viewer.zoom(NATURAL / fitted);
    }
    home = { zoom: viewer.getZoom(), pan: viewer.getPan() };
  }

  function openOn(changed) {
    const around = components().filter((n) => !n.classList.contains("faded"));
    for (const box of [union(around), union(changed)]) {
      if (zoomToShow(box) >= LEGIBLE) return show(box, Math.min(zoomToShow(box), NATURAL));
    }
    // Too spread out to read at once: the change nearest their middle ("Next change" for the rest).
    const middle = centre(union(changed));
    const distance = (box) => Math.hypot(centre(box).x - middle.x, centre(box).y - middle.y);
    const nearest = changed.map(inGraph).reduce((a, b) => (distance(a) <= distance(b) ? a : b));
    return show(nearest, LEGIBLE);
  }

  function fit() {
    viewer.resize();
    viewer.fit();
    viewer.center();
  }

  function reset() {
    viewer.zoom(home.zoom);
    viewer.pan(home.pan);
  }

  // --- Finding a component
  function clearMatch() {
    canvas.querySelectorAll("g.node.match").forEach((n) => n.classList.remove("match"));
  }

  function matching(query) {
    const wanted = query.trim().toLowerCase();
    if (!wanted) return [];
    const all = components().sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
    const exact = all.filter((n) => nameOf(n).toLowerCase() === wanted);
    return exact.length ? exact : all.filter((n) => nameOf(n).toLowerCase().includes(wanted));
  }

  // Visit one of `nodes()` after the other: the same `key` again goes on to the next one.
  function visit(key, nodes) {
    if (key !== visiting.key) visiting = { key, nodes: nodes(), index: -1 };
    clearMatch();
    if (!visiting.nodes.length) return null;
    visiting.index = (visiting.index + 1) % visiting.nodes.length;
    const node = visiting.nodes[visiting.index];
    node.classList.add("match");
    show(inGraph(node), Math.max(realZoom(), LEGIBLE));
    return node;
  }

  function findComponent(query) {
    const node = viewer && visit(`find:${query}`, () => matching(query));
    const { index, nodes } = visiting;
    if (!node) {
      status.textContent = query.trim() ? `No component matches “${query.trim()}”.` : "";
    } else {
      status.textContent = nodes.length > 1 ? `${nameOf(node)} (${index + 1} of ${nodes.length}; Enter for the next)` : nameOf(node);
    }
  }

  // Changes in reading order: left to right, as the graph flows.
  function nextChange() {
    const node = visit("changes", () => {
      const boxes = new Map(changes().map((n) => [n, inGraph(n)]));
      return [...boxes.keys()].sort((a, b) => boxes.get(a).x - boxes.get(b).x || boxes.get(a).y - boxes.get(b).y);
    });
    if (node) status.textContent = `Change ${visiting.index + 1} of ${visiting.nodes.length}: ${nameOf(node)}`;
  }

  // --- Keyboard
  const KEYS = {
    "+": () => viewer.zoomIn(),
    "=": () => viewer.zoomIn(),
    "-": () => viewer.zoomOut(),
    0: fit,
    Home: reset,
    n: nextChange,
    ArrowLeft: () => viewer.panBy({ x: PAN_STEP, y: 0 }),
    ArrowRight: () => viewer.panBy({ x: -PAN_STEP, y: 0 }),
    ArrowUp: () => viewer.panBy({ x: 0, y: PAN_STEP }),
    ArrowDown: () => viewer.panBy({ x: 0, y: -PAN_STEP }),
    Escape: () => {
      clearMatch();
      visiting = { key: "", nodes: [], index: -1 };
      status.textContent = "";
    },
  };

  canvas.addEventListener("keydown", (event) => {
    const action = viewer && !event.ctrlKey && !event.metaKey && !event.altKey && KEYS[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest("input, textarea, select, [contenteditable]");
    if (!viewer || typing || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "/") {
      event.preventDefault();
      find.focus();
      find.select();
    } else if (event.key === "n" && event.target !== canvas) {
      nextChange();
    }
  });

  search.addEventListener("submit", (event) => {
    event.preventDefault();
    findComponent(find.value);
  });

  find.addEventListener("keydown", (event) => {
    if (event.key === "Escape") KEYS.Escape();
  });

  toolbar.addEventListener("click", (event) => {
    const button = event.target.closest("[data-action]");
    if (!button || !viewer) return;
    const actions = { in: () => viewer.zoomIn(), out: () => viewer.zoomOut(), fit, reset, "next-change": nextChange };
    actions[button.dataset.action]();
  });

  // A drag that ends on a component pans; it does not open the component.
  let pressed = null;
  canvas.addEventListener("pointerdown", (event) => {
    pressed = { x: event.clientX, y: event.clientY };
  });
  canvas.addEventListener(
    "click",
    (event) => {
      if (pressed && Math.hypot(event.clientX - pressed.x, event.clientY - pressed.y) > 5) {
        event.preventDefault();
        event.stopPropagation();
      }
    },
    true
  );

  // --- Setting up when htmx brings the SVG
  function setUp() {
    const svg = canvas.querySelector("svg");
    if (!svg || typeof window.svgPanZoom !== "function") return;
    const box = svg.viewBox.baseVal;
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    // Through the CSSOM, so the library sees it and writes no style attribute of its own.
    svg.style.overflow = "hidden";
    canvas.classList.add("pannable");
    const opening = clamp(canvas.clientWidth / box.width, LEGIBLE, NATURAL);
    // As tall as the graph at that zoom, within what is left of the window below the toolbar.
    const below = window.innerHeight - (canvas.getBoundingClientRect().top + window.scrollY) - 16;
    const tallest = Math.max(below, window.innerHeight * 0.6);
    canvas.style.height = `${Math.round(clamp(box.height * opening + 2 * MARGIN + 2, 240, tallest))}px`;
    viewer = window.svgPanZoom(svg, {
      fit: true,
      center: true,
      minZoom: 0.5,
      zoomScaleSensitivity: 0.25,
      dblClickZoomEnabled: true,
    });
    viewer.setMaxZoom(Math.max(2, MAX_ZOOM / realZoom()));
    open();
    visiting = { key: "", nodes: [], index: -1 };
    toolbar.querySelector("[data-action=next-change]").hidden = !changes().length;
    toolbar.hidden = false;
  }

  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target === canvas) setUp();
  });

  document.addEventListener("htmx:responseError", (event) => {
    if (event.detail.target !== canvas) return;
    const note = canvas.querySelector(".rendering");
    if (note) note.textContent = `The topology could not be rendered (${event.detail.xhr.status}). Try the DOT download.`;
  });

  window.addEventListener("resize", () => {
    if (viewer) viewer.resize();
  });

  setUp(); // the SVG may already be there (a restored page)
})();
