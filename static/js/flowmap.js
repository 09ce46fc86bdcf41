/* Pontis data-flow map: systems as nodes, interfaces as arrows coloured by status.
 *
 * Dependency-free. Works under `script-src 'self'; style-src 'self'`: everything is built
 * with createElementNS/textContent and styled with SVG presentation attributes only.
 */
(() => {
  'use strict';

  const SVG_NS = 'http://www.w3.org/2000/svg';
  const WIDTH = 1200;
  const HEIGHT = 700;
  const MARGIN = 16;
  const LEGEND_HEIGHT = 24; // strip at the bottom kept free for the kind legend
  const COMPACT_ABOVE = 60; // more systems than this: small dots instead of labelled boxes
  const ITERATIONS = 150;
  const MAX_SPRING = 260; // longest ideal edge, in user units, after fitting the layout to the canvas
  const SERVER_EDGE_LIMIT = 2000; // the JSON view truncates at this many interfaces
  const INK = '#1d2330';
  const MUTED = '#5f6b7a';

  const STATUS_COLOURS = {
    proposed: '#98a2b3',
    design: '#7f56d9',
    build: '#2f5bd3',
    test: '#dc8a00',
    live: '#1d7a46',
    retired: '#c0c0c0',
  };
  const FALLBACK_STATUS = 'proposed';

  const KINDS = {
    saas: { label: 'SaaS', fill: '#e0f2f7', stroke: '#0e7490' },
    on_prem: { label: 'On-prem', fill: '#eef0f3', stroke: '#475467' },
    custom_service: { label: 'Custom service', fill: '#fbeee6', stroke: '#93370d' },
    partner: { label: 'Partner', fill: '#fdeaf4', stroke: '#c11574' },
    data_platform: { label: 'Data platform', fill: '#eef0fb', stroke: '#3e4784' },
  };
  const UNKNOWN_KIND = { fill: '#ffffff', stroke: '#98a2b3' };

  const BOUNDS = {
    left: MARGIN,
    top: MARGIN,
    right: WIDTH - MARGIN,
    bottom: HEIGHT - LEGEND_HEIGHT - MARGIN,
  };

  // ------------------------------------------------------------------ small helpers

  function svgEl(tag, attrs, parent) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      el.setAttribute(name, String(value));
    }
    if (parent) parent.appendChild(el);
    return el;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  function clamp(value, low, high) {
    return low > high ? (low + high) / 2 : Math.min(high, Math.max(low, value));
  }

  function humanise(value) {
    const text = String(value || '').replace(/_/g, ' ');
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function truncate(text, max) {
    return text.length > max ? text.slice(0, max - 1) + '…' : text;
  }

  function plural(count, one, many) {
    return `${count} ${count === 1 ? one : many}`;
  }

  function kindStyle(kind) {
    return KINDS[kind] || UNKNOWN_KIND;
  }

  function kindLabel(kind) {
    return (KINDS[kind] && KINDS[kind].label) || humanise(kind) || 'Unknown kind';
  }

  function statusKey(status) {
    return Object.prototype.hasOwnProperty.call(STATUS_COLOURS, status) ? status : FALLBACK_STATUS;
  }

  /** value -> label for a filter <select>, so tooltips use the server's wording. */
  function optionLabels(form, name) {
    const labels = new Map();
    const select = form && form.elements.namedItem(name);
    if (select && select.options) {
      for (const option of select.options) {
        if (option.value) labels.set(option.value, option.textContent.trim());
      }
    }
    return labels;
  }

  /** Text width in user units; falls back to an estimate when the SVG is not rendered. */
  function textWidth(textEl, fontSize) {
    let width = 0;
    try {
      width = textEl.getComputedTextLength();
    } catch (err) {
      width = 0;
    }
    // Whole units, so sub-pixel font rendering differences cannot change the layout.
    return Math.ceil(width > 0 ? width : textEl.textContent.length * fontSize * 0.58);
  }

  /** Only same-origin http(s) links are kept; anything else (javascript:, data:, //other) is dropped. */
  function safeHref(url) {
    try {
      const resolved = new URL(String(url), window.location.href);
      const httpish = resolved.protocol === 'http:' || resolved.protocol === 'https:';
      return httpish && resolved.origin === window.location.origin ? String(url) : null;
    } catch (err) {
      return null;
    }
  }

  // ------------------------------------------------------------------ data

  function buildUrl(source, form) {
    const url = new URL(source, window.location.href);
    for (const name of ['team', 'status', 'pattern']) {
      const field = form && form.elements.namedItem(name);
      url.searchParams.set(name, field ? field.value : '');
    }
    return url.href;
  }

  async function fetchGraph(url, signal) {
    const response = await fetch(url, {
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
      signal,
    });
    if (!response.ok) throw new Error(`the server answered HTTP ${response.status}`);
    // An expired session redirects to the HTML login page rather than failing.
    const type = response.headers.get('Content-Type') || '';
    if (!type.includes('json')) throw new Error('the server did not return map data (has your session expired?)');
    const data = await response.json();
    if (!data || !Array.isArray(data.nodes) || !Array.isArray(data.edges)) {
      throw new Error('the map data is malformed');
    }
    return data;
  }

  /** Node and edge records the renderer works on; edges to unknown systems are skipped. */
  function buildGraph(data) {
    const nodes = data.nodes
      .map((raw) => ({ id: raw.id, name: String(raw.name || ''), kind: String(raw.kind || ''), edges: [] }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)); // stable layout whatever the server order
    const byId = new Map();
    nodes.forEach((node, index) => {
      node.index = index;
      byId.set(String(node.id), node);
    });

    const edges = [];
    for (const raw of data.edges) {
      const source = byId.get(String(raw.source));
      const target = byId.get(String(raw.target));
      if (!source || !target) continue;
      const edge = { data: raw, source, target, bulge: 0, loop: -1 };
      edges.push(edge);
      source.edges.push(edge);
      if (target !== source) target.edges.push(edge);
    }

    const used = nodes.filter((node) => node.edges.length > 0);
    used.forEach((node, index) => {
      node.index = index;
    });
    const usedById = new Map(used.map((node) => [String(node.id), node]));
    return { nodes: used, edges, byId: usedById, truncated: data.edges.length >= SERVER_EDGE_LIMIT };
  }

  /**
   * Parallel interfaces between one pair of systems get distinct curvatures. Bulges are
   * measured in the pair's canonical frame (lower index -> higher index), so A->B and B->A
   * end up on opposite sides of the straight line.
   */
  function assignBulges(edges, spacing) {
    const groups = new Map();
    for (const edge of edges) {
      const low = edge.source.index <= edge.target.index ? edge.source : edge.target;
      const high = low === edge.source ? edge.target : edge.source;
      edge.low = low;
      edge.high = high;
      const key = `${low.index}:${high.index}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(edge);
    }
    for (const group of groups.values()) {
      if (group[0].source === group[0].target) {
        group.forEach((edge, i) => {
          edge.loop = i;
        });
        continue;
      }
      const forward = group.filter((edge) => edge.source === edge.low);
      const backward = group.filter((edge) => edge.source !== edge.low);
      if (forward.length && backward.length) {
        forward.forEach((edge, i) => {
          edge.bulge = (i + 0.5) * spacing;
        });
        backward.forEach((edge, i) => {
          edge.bulge = -(i + 0.5) * spacing;
        });
      } else {
        group.forEach((edge, i) => {
          edge.bulge = (i - (group.length - 1) / 2) * spacing;
        });
      }
    }
  }

  // ------------------------------------------------------------------ layout

  function clampNode(node) {
    node.x = clamp(node.x, BOUNDS.left + node.box.hw, BOUNDS.right - node.box.hw);
    node.y = clamp(node.y, BOUNDS.top + node.box.hh, BOUNDS.bottom - node.box.hh);
  }

  /**
   * Fruchterman–Reingold: pairwise repulsion, springs along edges, a pull towards the centre
   * and a cooling step limit. Deterministic: seeded on a circle, fixed iteration count.
   * Runs unbounded around (0, 0); fitToBounds() maps the result onto the canvas afterwards,
   * which avoids nodes piling up against the walls. O(n²) per iteration, fine for ~500 systems.
   */
  function forceLayout(nodes, edges) {
    const n = nodes.length;
    const area = (BOUNDS.right - BOUNDS.left) * (BOUNDS.bottom - BOUNDS.top);
    const k = clamp(Math.sqrt(area / Math.max(n, 1)) * 0.6, 24, 200); // ideal spring length
    const k2 = k * k;
    const gravity = 1.2;
    const xs = new Float64Array(n);
    const ys = new Float64Array(n);
    const dx = new Float64Array(n);
    const dy = new Float64Array(n);

    const radius = (k * Math.sqrt(n)) / 2;
    for (let i = 0; i < n; i++) {
      const angle = (2 * Math.PI * i) / n;
      xs[i] = radius * Math.cos(angle);
      ys[i] = radius * Math.sin(angle);
    }

    const links = uniqueLinks(edges);
    let temperature = radius / 2 + k;
    const cooling = temperature / (ITERATIONS + 1);

    for (let iter = 0; iter < ITERATIONS && n > 1; iter++) {
      dx.fill(0);
      dy.fill(0);
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          let ddx = xs[i] - xs[j];
          let ddy = ys[i] - ys[j];
          let d2 = ddx * ddx + ddy * ddy;
          if (d2 < 0.01) {
            // Coincident nodes: separate them in a fixed, index-dependent direction.
            ddx = Math.cos(i + j);
            ddy = Math.sin(i + j);
            d2 = 1;
          }
          const f = k2 / d2;
          dx[i] += ddx * f;
          dy[i] += ddy * f;
          dx[j] -= ddx * f;
          dy[j] -= ddy * f;
        }
      }
      for (const [a, b] of links) {
        const ddx = xs[a] - xs[b];
        const ddy = ys[a] - ys[b];
        const f = Math.sqrt(ddx * ddx + ddy * ddy) / k;
        dx[a] -= ddx * f;
        dy[a] -= ddy * f;
        dx[b] += ddx * f;
        dy[b] += ddy * f;
      }
      for (let i = 0; i < n; i++) {
        dx[i] -= gravity * xs[i];
        dy[i] -= gravity * ys[i];
        const length = Math.sqrt(dx[i] * dx[i] + dy[i] * dy[i]);
        if (length > 0) {
          const step = Math.min(length, temperature) / length;
          xs[i] += dx[i] * step;
          ys[i] += dy[i] * step;
        }
      }
      temperature = Math.max(temperature - cooling, k / 50);
    }

    nodes.forEach((node, i) => {
      node.x = xs[i];
      node.y = ys[i];
    });
    return k;
  }

  function uniqueLinks(edges) {
    const seen = new Set();
    const links = [];
    for (const edge of edges) {
      const a = edge.source.index;
      const b = edge.target.index;
      const key = a < b ? `${a}:${b}` : `${b}:${a}`;
      if (a !== b && !seen.has(key)) {
        seen.add(key);
        links.push([a, b]);
      }
    }
    return links;
  }

  /**
   * Scale and centre the layout onto the canvas, each axis on its own so a round cloud uses
   * the wide canvas. The scale ignores the outermost 2% of a large graph (usually lone leaves
   * flung far out), which are clamped to the border instead. Springs may not be stretched
   * beyond MAX_SPRING, so a handful of systems is not blown up to the corners.
   */
  function fitToBounds(nodes, springLength) {
    const maxGrow = MAX_SPRING / springLength;
    const trim = nodes.length > 50 ? 0.02 : 0;
    const hw = Math.max(...nodes.map((node) => node.box.hw));
    const hh = Math.max(...nodes.map((node) => node.box.hh));
    const fit = (values, low, high, half) => {
      const sorted = values.slice().sort((a, b) => a - b);
      const min = sorted[Math.round(trim * (sorted.length - 1))];
      const max = sorted[Math.round((1 - trim) * (sorted.length - 1))];
      const room = Math.max(high - low - 2 * half, 0);
      const scale = max > min ? Math.min(room / (max - min), maxGrow) : 1;
      const offset = (low + high) / 2 - ((min + max) / 2) * scale;
      return (value) => value * scale + offset;
    };
    const mapX = fit(nodes.map((node) => node.x), BOUNDS.left, BOUNDS.right, hw);
    const mapY = fit(nodes.map((node) => node.y), BOUNDS.top, BOUNDS.bottom, hh);
    for (const node of nodes) {
      node.x = mapX(node.x);
      node.y = mapY(node.y);
      clampNode(node);
    }
  }

  /** Push overlapping node footprints apart along the axis of least overlap (a few passes). */
  function removeOverlaps(nodes, padding, passes) {
    for (let pass = 0; pass < passes; pass++) {
      let moved = false;
      for (let i = 0; i < nodes.length; i++) {
        const a = nodes[i];
        for (let j = i + 1; j < nodes.length; j++) {
          const b = nodes[j];
          const ddx = a.x - b.x;
          const ddy = a.y - b.y;
          const overlapX = a.footprint.hw + b.footprint.hw + padding - Math.abs(ddx);
          const overlapY = a.footprint.hh + b.footprint.hh + padding - Math.abs(ddy);
          if (overlapX <= 0 || overlapY <= 0) continue;
          moved = true;
          if (overlapX < overlapY) {
            const shift = (overlapX / 2) * (ddx < 0 ? -1 : 1);
            a.x += shift;
            b.x -= shift;
          } else {
            const shift = (overlapY / 2) * (ddy < 0 ? -1 : 1);
            a.y += shift;
            b.y -= shift;
          }
        }
      }
      nodes.forEach(clampNode);
      if (!moved) break;
    }
  }

  // ------------------------------------------------------------------ geometry

  /** Where the ray from the node's centre towards (tx, ty) leaves its shape (plus a gap). */
  function boundaryPoint(node, tx, ty, gap) {
    const dx = tx - node.x;
    const dy = ty - node.y;
    if (dx === 0 && dy === 0) return { x: node.x, y: node.y };
    const shape = node.shape;
    let scale;
    if (shape.r) {
      scale = (shape.r + gap) / Math.sqrt(dx * dx + dy * dy);
    } else {
      scale = 1 / Math.max(Math.abs(dx) / (shape.hw + gap), Math.abs(dy) / (shape.hh + gap));
    }
    return { x: node.x + dx * scale, y: node.y + dy * scale };
  }

  function round(value) {
    return Math.round(value * 10) / 10;
  }

  function edgePathData(edge) {
    if (edge.loop >= 0) return loopPathData(edge);
    const { low, high } = edge;
    let vx = high.x - low.x;
    let vy = high.y - low.y;
    const length = Math.sqrt(vx * vx + vy * vy) || 1;
    vx /= length;
    vy /= length;
    // A quadratic curve peaks halfway to its control point, hence the factor 2.
    const cx = (low.x + high.x) / 2 - vy * edge.bulge * 2;
    const cy = (low.y + high.y) / 2 + vx * edge.bulge * 2;
    const start = boundaryPoint(edge.source, cx, cy, 1);
    const end = boundaryPoint(edge.target, cx, cy, 2);
    return `M${round(start.x)},${round(start.y)} Q${round(cx)},${round(cy)} ${round(end.x)},${round(end.y)}`;
  }

  function loopPathData(edge) {
    const node = edge.source;
    const top = node.y - (node.shape.r || node.shape.hh) - 1;
    const size = 16 + 10 * edge.loop;
    const x1 = node.x - 6;
    const x2 = node.x + 6;
    return `M${round(x1)},${round(top)} C${round(x1 - size)},${round(top - size * 1.6)} ` +
      `${round(x2 + size)},${round(top - size * 1.6)} ${round(x2)},${round(top)}`;
  }

  // ------------------------------------------------------------------ rendering

  function createMarkers(svg, compact) {
    const defs = svgEl('defs', {}, svg);
    const size = compact ? 7 : 10;
    for (const [status, colour] of Object.entries(STATUS_COLOURS)) {
      const marker = svgEl('marker', {
        id: `flow-map-arrow-${status}`,
        viewBox: '0 0 10 10',
        refX: 9,
        refY: 5,
        markerWidth: size,
        markerHeight: size,
        markerUnits: 'userSpaceOnUse',
        orient: 'auto',
      }, defs);
      svgEl('path', { d: 'M0,0 L10,5 L0,10 z', fill: colour }, marker);
    }
  }

  function createNode(node, compact, layer) {
    const style = kindStyle(node.kind);
    const g = svgEl('g', { class: 'node', 'data-id': node.id, 'data-kind': node.kind, cursor: 'grab' }, layer);
    const title = svgEl('title', {}, g);
    const count = plural(node.edges.length, 'interface', 'interfaces');
    title.textContent = `${node.name} — ${kindLabel(node.kind)} (${count})`;

    if (compact) {
      const r = 5;
      svgEl('circle', { r, fill: style.fill, stroke: style.stroke, 'stroke-width': 2 }, g);
      const label = svgEl('text', { y: r + 9, 'text-anchor': 'middle', 'font-size': 8, fill: INK }, g);
      label.textContent = truncate(node.name, 16);
      node.shape = { r };
      // Labels of hundreds of dots cannot all be kept apart; only the dots are.
      node.box = { hw: Math.max(r, textWidth(label, 8) / 2) + 1, hh: r + 10 };
      node.footprint = { hw: r + 3, hh: r + 3 };
    } else {
      const rect = svgEl('rect', { rx: 6, ry: 6, fill: style.fill, stroke: style.stroke, 'stroke-width': 1.5 }, g);
      const name = svgEl('text', { y: -2, 'text-anchor': 'middle', 'font-size': 12, 'font-weight': 600, fill: INK }, g);
      name.textContent = truncate(node.name, 24);
      const caption = svgEl('text', { y: 11, 'text-anchor': 'middle', 'font-size': 9.5, fill: MUTED }, g);
      caption.textContent = kindLabel(node.kind);
      const hw = Math.max(textWidth(name, 12), textWidth(caption, 9.5), 44) / 2 + 10;
      const hh = 18;
      rect.setAttribute('x', -hw);
      rect.setAttribute('y', -hh);
      rect.setAttribute('width', hw * 2);
      rect.setAttribute('height', hh * 2);
      node.shape = { hw, hh };
      node.box = { hw, hh };
      node.footprint = node.box;
    }
    node.el = g;
  }

  function positionNode(node) {
    node.el.setAttribute('transform', `translate(${round(node.x)} ${round(node.y)})`);
  }

  function edgeTooltip(data, labels) {
    const status = labels.status.get(data.status) || humanise(data.status);
    const pattern = labels.pattern.get(data.pattern) || humanise(data.pattern);
    return `${data.code} ${data.name} (${status}, ${pattern})`;
  }

  function createEdge(edge, labels, compact, layer) {
    const data = edge.data;
    const status = statusKey(data.status);
    const a = svgEl('a', {
      class: 'edge',
      'data-code': data.code,
      'data-status': data.status,
      'data-source': edge.source.id,
      'data-target': edge.target.id,
    }, layer);
    const href = safeHref(data.url);
    if (href) a.setAttribute('href', href);
    svgEl('title', {}, a).textContent = edgeTooltip(data, labels);

    const width = compact ? 1 : 1.8;
    edge.line = svgEl('path', {
      class: 'edge-line',
      fill: 'none',
      stroke: STATUS_COLOURS[status],
      'stroke-width': width,
      'stroke-opacity': compact ? 0.6 : 0.95,
      'marker-end': `url(#flow-map-arrow-${status})`,
      'data-width': width,
    }, a);
    if (status === 'retired') edge.line.setAttribute('stroke-dasharray', '5 4');
    // A wide invisible stroke on top makes thin arrows easy to hover and click.
    edge.hit = svgEl('path', {
      class: 'edge-hit',
      fill: 'none',
      stroke: '#000',
      'stroke-opacity': 0,
      'stroke-width': compact ? 6 : 10,
      'pointer-events': 'stroke',
    }, a);
  }

  function updateEdge(edge) {
    const d = edgePathData(edge);
    edge.line.setAttribute('d', d);
    edge.hit.setAttribute('d', d);
  }

  function drawKindLegend(svg, nodes) {
    const kinds = [...new Set(nodes.map((node) => node.kind))].sort((a, b) => {
      const order = Object.keys(KINDS);
      const ia = order.indexOf(a) < 0 ? order.length : order.indexOf(a);
      const ib = order.indexOf(b) < 0 ? order.length : order.indexOf(b);
      return ia - ib || (a < b ? -1 : 1);
    });
    const legend = svgEl('g', { class: 'kind-legend', transform: `translate(${MARGIN} ${HEIGHT - 14})` }, svg);
    let x = 0;
    for (const kind of kinds) {
      const style = kindStyle(kind);
      svgEl('rect', { x, y: -9, width: 14, height: 10, rx: 2, fill: style.fill, stroke: style.stroke, 'stroke-width': 1.5 }, legend);
      const label = svgEl('text', { x: x + 19, y: 0, 'font-size': 11, fill: MUTED }, legend);
      label.textContent = kindLabel(kind);
      x += 19 + textWidth(label, 11) + 16;
    }
  }

  function centredMessage(svg, text) {
    const el = svgEl('text', {
      class: 'empty',
      x: WIDTH / 2,
      y: HEIGHT / 2,
      'text-anchor': 'middle',
      'dominant-baseline': 'middle',
      'font-size': 18,
      fill: MUTED,
    }, svg);
    el.textContent = text;
  }

  /** Replace the map's contents with the given data; returns the graph for dragging. */
  function draw(svg, data, labels) {
    clear(svg);
    const graph = buildGraph(data);
    if (!graph.edges.length) {
      centredMessage(svg, 'No interfaces match these filters.');
      return graph;
    }
    const compact = graph.nodes.length > COMPACT_ABOVE;
    createMarkers(svg, compact);
    const edgeLayer = svgEl('g', { class: 'edges' }, svg);
    const nodeLayer = svgEl('g', { class: 'nodes' }, svg);

    // Nodes go into the DOM first so their labels can be measured before the layout runs.
    for (const node of graph.nodes) createNode(node, compact, nodeLayer);
    const springLength = forceLayout(graph.nodes, graph.edges);
    fitToBounds(graph.nodes, springLength);
    removeOverlaps(graph.nodes, compact ? 2 : 12, compact ? 20 : 60);
    graph.nodes.forEach(positionNode);

    assignBulges(graph.edges, compact ? 8 : 18);
    for (const edge of graph.edges) {
      createEdge(edge, labels, compact, edgeLayer);
      updateEdge(edge);
    }
    drawKindLegend(svg, graph.nodes);
    return graph;
  }

  function summaryText(graph) {
    const text = `${plural(graph.nodes.length, 'system', 'systems')}, ` +
      `${plural(graph.edges.length, 'interface', 'interfaces')} shown`;
    return graph.truncated ? `${text} (only the first ${SERVER_EDGE_LIMIT}; narrow the filters to see the rest)` : text;
  }

  function setSummary(summary, text, isError) {
    if (!summary) return;
    summary.textContent = text;
    // .muted would win over .errors (same specificity, later in the stylesheet).
    summary.classList.toggle('errors', Boolean(isError));
    summary.classList.toggle('muted', !isError);
  }

  // ------------------------------------------------------------------ interaction

  function toSvgPoint(svg, event) {
    const ctm = svg.getScreenCTM();
    if (!ctm) return { x: 0, y: 0 };
    return new DOMPoint(event.clientX, event.clientY).matrixTransform(ctm.inverse());
  }

  function enableDragging(svg, currentGraph) {
    let drag = null;

    svg.addEventListener('pointerdown', (event) => {
      const el = event.target.closest && event.target.closest('g.node');
      const graph = currentGraph();
      if (!el || !graph || event.button !== 0) return;
      const node = graph.byId.get(el.getAttribute('data-id'));
      if (!node) return;
      const point = toSvgPoint(svg, event);
      drag = { node, pointerId: event.pointerId, offsetX: node.x - point.x, offsetY: node.y - point.y };
      el.parentNode.appendChild(el); // raise above neighbours; before capture, which a DOM move would drop
      el.setAttribute('cursor', 'grabbing');
      try {
        el.setPointerCapture(event.pointerId);
      } catch (err) {
        // Synthetic or already-released pointers cannot be captured; dragging still works inside the SVG.
      }
      event.preventDefault();
    });

    svg.addEventListener('pointermove', (event) => {
      if (!drag || event.pointerId !== drag.pointerId) return;
      const point = toSvgPoint(svg, event);
      const node = drag.node;
      node.x = point.x + drag.offsetX;
      node.y = point.y + drag.offsetY;
      clampNode(node);
      positionNode(node);
      node.edges.forEach(updateEdge);
    });

    const endDrag = (event) => {
      if (!drag || event.pointerId !== drag.pointerId) return;
      drag.node.el.setAttribute('cursor', 'grab');
      drag = null;
    };
    svg.addEventListener('pointerup', endDrag);
    svg.addEventListener('pointercancel', endDrag);
    // Keep touch drags from scrolling the page and mouse drags from selecting label text.
    svg.addEventListener('touchstart', (event) => {
      if (event.target.closest && event.target.closest('g.node')) event.preventDefault();
    }, { passive: false });
    svg.addEventListener('selectstart', (event) => {
      if (drag || (event.target.closest && event.target.closest('g.node'))) event.preventDefault();
    });
  }

  function enableEdgeHighlight(svg) {
    const highlight = (event, on) => {
      const a = event.target.closest && event.target.closest('a.edge');
      const line = a && a.querySelector('.edge-line');
      if (!line) return;
      const base = Number(line.getAttribute('data-width')) || 1.5;
      line.setAttribute('stroke-width', on ? base + 2 : base);
    };
    svg.addEventListener('pointerover', (event) => highlight(event, true));
    svg.addEventListener('pointerout', (event) => highlight(event, false));
    svg.addEventListener('focusin', (event) => highlight(event, true));
    svg.addEventListener('focusout', (event) => highlight(event, false));
  }

  // ------------------------------------------------------------------ wiring

  function init() {
    const svg = document.getElementById('flow-map');
    if (!svg) return;
    const form = document.getElementById('map-filters');
    const summary = document.getElementById('flow-map-summary');
    const source = svg.getAttribute('data-source');
    const labels = { status: optionLabels(form, 'status'), pattern: optionLabels(form, 'pattern') };
    if (summary) summary.setAttribute('aria-live', 'polite');

    svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
    svg.setAttribute('preserveAspectRatio', 'xMidYMid meet');

    let graph = null;
    let pending = null;
    enableDragging(svg, () => graph);
    enableEdgeHighlight(svg);

    async function refresh() {
      if (pending) pending.abort(); // the latest filter choice wins
      const controller = new AbortController();
      pending = controller;
      svg.setAttribute('aria-busy', 'true');
      setSummary(summary, 'Loading…');
      try {
        const data = await fetchGraph(buildUrl(source, form), controller.signal);
        if (controller.signal.aborted) return;
        graph = draw(svg, data, labels);
        setSummary(summary, summaryText(graph));
      } catch (err) {
        if (controller.signal.aborted) return;
        graph = null;
        clear(svg);
        centredMessage(svg, 'The map could not be loaded.');
        setSummary(summary, `Could not load the map: ${err.message || err}.`, true);
      } finally {
        if (pending === controller) {
          pending = null;
          svg.removeAttribute('aria-busy');
        }
      }
    }

    if (form) {
      form.addEventListener('change', refresh);
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        refresh();
      });
    }
    refresh();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
