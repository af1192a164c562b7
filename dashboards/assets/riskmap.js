/*
 * riskwatch map: draws one admin level's areas on a canvas inside Leaflet.
 *
 * Geometry comes from /map/geometry as a compact binary message (riskwatch/map_geometry.py,
 * "RWG1": quantised, delta-encoded rings), once per level and country selection, then finer
 * levels of detail per tile as the user zooms in. Colours come from /map/values: small arrays
 * of class codes per area, so changing the period or the variable never re-sends geometry.
 * Everything is drawn in a few canvas paths (one per colour), which keeps 50,000 areas fast.
 *
 * window.riskmap exposes counters for the browser tests and the benchmark.
 */
(function () {
  "use strict";

  var COLOURS = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026", "#bdbdbd"];
  var CLASS_LABELS = ["Very low", "Low", "Medium", "High", "Very high", "Insufficient data"];
  var NO_DATA = 5;
  var BOUNDARY = "#444444";
  var HATCH = "#636363";
  var MAX_LABELS = 400;

  var state = {
    map: null, canvas: null, tooltip: null, leafletLoading: null, request: null,
    geometryKey: null, geo: null, values: null, tiles: {}, pending: 0, scheduled: false,
    tileLayer: null, tileUrl: null, firstRenderDone: false, generation: 0,
  };
  var api = {
    geometryRequests: 0, valuesRequests: 0, tileRequests: 0, drawnAreas: 0, areaCount: 0,
    renders: 0, lastDrawMs: null, drawLog: [], ready: false, error: null, state: null, pcodes: [],
  };
  window.riskmap = api;

  // Leaflet (vendored) is loaded on the first map page only ---------------------------------
  function loadLeaflet(base) {
    if (window.L) { return Promise.resolve(); }
    if (state.leafletLoading) { return state.leafletLoading; }
    state.leafletLoading = new Promise(function (resolve, reject) {
      var css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = base + "leaflet.css";
      document.head.appendChild(css);
      var script = document.createElement("script");
      script.src = base + "leaflet.js";
      script.onload = function () { resolve(); };
      script.onerror = function () { reject(new Error("cannot load the map library")); };
      document.head.appendChild(script);
    });
    return state.leafletLoading;
  }

  // Projection: Web Mercator "world" units (256 at zoom 0) ----------------------------------
  function worldX(lon) { return (lon + 180) / 360 * 256; }
  function worldY(lat) {
    lat = Math.max(-85.0511, Math.min(85.0511, lat));
    var r = lat * Math.PI / 180;
    return (1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2 * 256;
  }

  // Decoding the RWG1 message (see riskwatch/map_geometry.py encode) ----------------------
  function decode(buffer) {
    var view = new DataView(buffer);
    var magic = String.fromCharCode(view.getUint8(0), view.getUint8(1), view.getUint8(2),
                                    view.getUint8(3));
    if (magic !== "RWG1") { throw new Error("unexpected geometry format"); }
    var length = view.getUint32(4, true);
    var header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, length)));
    var offset = 8 + length;
    function take(Type, count) {
      var array = new Type(buffer, offset, count);
      offset += count * Type.BYTES_PER_ELEMENT;
      return array;
    }
    var n = header.areas, rings = header.rings, points = header.points;
    var ids = take(Uint32Array, n);
    var ringCounts = take(Uint32Array, n);
    var ringLengths = take(Uint32Array, rings);
    var nonEmpty = 0;
    for (var r = 0; r < rings; r++) { if (ringLengths[r] > 0) { nonEmpty++; } }
    var firsts = take(Int32Array, nonEmpty * 2);
    var steps = take(header.delta_bytes === 4 ? Int32Array : Int16Array, (points - nonEmpty) * 2);
    offset += (4 - offset % 4) % 4;
    var labels = header.meta ? take(Int32Array, n * 2) : null;

    // Rebuild absolute coordinates and project them once.
    var q = header.quantum;
    var xs = new Float64Array(points), ys = new Float64Array(points);
    var ringStart = new Uint32Array(rings + 1);
    var p = 0, f = 0, s = 0;
    for (r = 0; r < rings; r++) {
      ringStart[r] = p;
      var len = ringLengths[r];
      if (len === 0) { continue; }
      var gx = firsts[f * 2], gy = firsts[f * 2 + 1];
      f++;
      xs[p] = worldX(gx * q); ys[p] = worldY(gy * q); p++;
      for (var k = 1; k < len; k++) {
        gx += steps[s * 2]; gy += steps[s * 2 + 1]; s++;
        xs[p] = worldX(gx * q); ys[p] = worldY(gy * q); p++;
      }
    }
    ringStart[rings] = p;
    var areaRing = new Uint32Array(n + 1);
    for (var i = 0; i < n; i++) { areaRing[i + 1] = areaRing[i] + ringCounts[i]; }
    var result = { header: header, ids: ids, xs: xs, ys: ys, ringStart: ringStart,
                   areaRing: areaRing };
    if (labels) {
      result.labelX = new Float64Array(n);
      result.labelY = new Float64Array(n);
      for (i = 0; i < n; i++) {
        result.labelX[i] = worldX(labels[i * 2] * q);
        result.labelY[i] = worldY(labels[i * 2 + 1] * q);
      }
    }
    return result;
  }

  // The level's areas: per area, the chunk and rings of each loaded level of detail ---------
  function newGeometry(chunk) {
    var n = chunk.header.areas;
    var geo = {
      key: chunk.header.key, level: chunk.header.level, baseLod: chunk.header.lod,
      lodZooms: chunk.header.lod_zooms, tileOffset: chunk.header.tile_zoom_offset,
      n: n, pcodes: chunk.header.pcodes, names: chunk.header.names,
      labelX: chunk.labelX, labelY: chunk.labelY, bounds: chunk.header.bounds,
      minX: new Float64Array(n), minY: new Float64Array(n),
      maxX: new Float64Array(n), maxY: new Float64Array(n), lods: {}, index: {},
    };
    for (var i = 0; i < n; i++) { geo.index[geo.pcodes[i]] = i; }
    addChunk(geo, chunk);
    // Boxes from the first geometry (within its tolerance of the real outline).
    for (i = 0; i < n; i++) {
      var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
      for (var r = chunk.areaRing[i]; r < chunk.areaRing[i + 1]; r++) {
        for (var p = chunk.ringStart[r]; p < chunk.ringStart[r + 1]; p++) {
          var x = chunk.xs[p], y = chunk.ys[p];
          if (x < minX) { minX = x; } if (x > maxX) { maxX = x; }
          if (y < minY) { minY = y; } if (y > maxY) { maxY = y; }
        }
      }
      geo.minX[i] = minX; geo.minY[i] = minY; geo.maxX[i] = maxX; geo.maxY[i] = maxY;
    }
    return geo;
  }

  function addChunk(geo, chunk) {
    var lod = chunk.header.lod;
    var slot = geo.lods[lod];
    if (!slot) {
      slot = geo.lods[lod] = { chunk: new Array(geo.n), local: new Int32Array(geo.n) };
    }
    for (var j = 0; j < chunk.ids.length; j++) {
      var id = chunk.ids[j];
      if (!slot.chunk[id]) { slot.chunk[id] = chunk; slot.local[id] = j; }
    }
  }

  function lodForZoom(geo, zoom) {
    var lod = 0;
    for (var k = 0; k < geo.lodZooms.length; k++) { if (geo.lodZooms[k] <= zoom + 1e-9) { lod = k; } }
    return lod;
  }

  // Drawing ---------------------------------------------------------------------------------
  function hatchPattern(ctx, colour, cross) {
    var tile = document.createElement("canvas");
    tile.width = tile.height = 8;
    var t = tile.getContext("2d");
    t.strokeStyle = colour; t.lineWidth = 1.2;
    t.beginPath(); t.moveTo(0, 8); t.lineTo(8, 0); t.moveTo(-2, 2); t.lineTo(2, -2);
    t.moveTo(6, 10); t.lineTo(10, 6);
    if (cross) { t.moveTo(0, 0); t.lineTo(8, 8); }
    t.stroke();
    return ctx.createPattern(tile, "repeat");
  }

  function scheduleDraw() {
    if (state.scheduled) { return; }
    state.scheduled = true;
    window.requestAnimationFrame(function () { state.scheduled = false; draw(); });
  }

  function traceArea(ctx, geo, i, lod, scale, ox, oy) {
    // The finest loaded LOD not finer than wanted, else the coarsest loaded one.
    var slot = null, k;
    for (k = lod; k >= 0 && !slot; k--) {
      if (geo.lods[k] && geo.lods[k].chunk[i]) { slot = geo.lods[k]; }
    }
    if (!slot) { slot = geo.lods[geo.baseLod]; }
    var chunk = slot.chunk[i], local = slot.local[i];
    var xs = chunk.xs, ys = chunk.ys, rs = chunk.ringStart;
    for (var r = chunk.areaRing[local]; r < chunk.areaRing[local + 1]; r++) {
      var p = rs[r], end = rs[r + 1];
      if (end - p < 2) { continue; }
      ctx.moveTo(xs[p] * scale - ox, ys[p] * scale - oy);
      for (p++; p < end; p++) { ctx.lineTo(xs[p] * scale - ox, ys[p] * scale - oy); }
      ctx.closePath();
    }
  }

  // Canvas paths get slow to build when they hold very many sub-paths (superlinear in
  // Chromium): areas are traced and painted in batches of PATH_BATCH.
  var PATH_BATCH = 1000;
  function paint(ctx, geo, list, lod, scale, ox, oy, finish) {
    for (var start = 0; start < list.length; start += PATH_BATCH) {
      var end = Math.min(list.length, start + PATH_BATCH);
      ctx.beginPath();
      for (var j = start; j < end; j++) { traceArea(ctx, geo, list[j], lod, scale, ox, oy); }
      finish();
    }
  }

  function draw() {
    var map = state.map, geo = state.geo, canvas = state.canvas;
    // Nothing is drawn before the values arrive: an area is never shown without its class.
    if (!map || !geo || !canvas || !state.values) { return; }
    var started = performance.now();
    var size = map.getSize();
    var ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(size.x * ratio) || canvas.height !== Math.round(size.y * ratio)) {
      canvas.width = Math.round(size.x * ratio); canvas.height = Math.round(size.y * ratio);
      canvas.style.width = size.x + "px"; canvas.style.height = size.y + "px";
    }
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, size.x, size.y);
    var zoom = map.getZoom();
    var scale = Math.pow(2, zoom);
    var topLeft = map.containerPointToLayerPoint([0, 0]).add(map.getPixelOrigin());
    var ox = topLeft.x, oy = topLeft.y;
    var minX = ox / scale, minY = oy / scale;
    var maxX = (ox + size.x) / scale, maxY = (oy + size.y) / scale;
    var lod = Math.max(geo.baseLod, lodForZoom(geo, zoom + 1));
    var values = state.values;
    var groups = [[], [], [], [], [], []], stale = [], hot = [], cold = [], dots = [];
    var visible = 0;
    for (var i = 0; i < geo.n; i++) {
      if (geo.maxX[i] < minX || geo.minX[i] > maxX || geo.maxY[i] < minY || geo.minY[i] > maxY) {
        continue;
      }
      visible++;
      var cls = values ? values.classes[i] : NO_DATA;
      groups[cls === undefined || cls < 0 || cls > NO_DATA ? NO_DATA : cls].push(i);
      if (values) {
        if (values.stale[i]) { stale.push(i); }
        var h = values.hotspots[i];
        if (h >= 0) {
          var name = values.hotspot_names[h];
          if (name.indexOf("hot_") === 0) { hot.push(i); } else if (name.indexOf("cold_") === 0) { cold.push(i); }
          var t = values.temporal[i] >= 0 ? values.temporal_names[values.temporal[i]] : "none";
          if (name.indexOf("hot_") === 0 && (t === "new" || t === "intensifying")) { dots.push(i); }
        }
      }
    }
    ctx.lineJoin = "round";
    ctx.strokeStyle = BOUNDARY;
    ctx.lineWidth = zoom >= 8 ? 0.6 : 0.35;
    for (var g = 0; g < groups.length; g++) {
      ctx.fillStyle = COLOURS[g];
      var pattern = g === NO_DATA ? (state.hatch || (state.hatch = hatchPattern(ctx, HATCH, false))) : null;
      paint(ctx, geo, groups[g], lod, scale, ox, oy, function () {
        ctx.fillStyle = COLOURS[g];
        ctx.fill("evenodd");
        if (pattern) { ctx.fillStyle = pattern; ctx.fill("evenodd"); }
        ctx.stroke();
      });
    }
    if (stale.length) {
      var cross = state.cross || (state.cross = hatchPattern(ctx, "#1a1a1a", true));
      paint(ctx, geo, stale, lod, scale, ox, oy, function () { ctx.fillStyle = cross; ctx.fill("evenodd"); });
    }
    if (hot.length) {
      ctx.strokeStyle = "#111111"; ctx.lineWidth = 2.2; ctx.setLineDash([]);
      paint(ctx, geo, hot, lod, scale, ox, oy, function () { ctx.stroke(); });
    }
    if (cold.length) {
      ctx.strokeStyle = "#2166ac"; ctx.lineWidth = 2; ctx.setLineDash([5, 3]);
      paint(ctx, geo, cold, lod, scale, ox, oy, function () { ctx.stroke(); });
      ctx.setLineDash([]);
    }
    var j;
    for (j = 0; j < dots.length; j++) {
      var d = dots[j];
      ctx.beginPath();
      ctx.arc(geo.labelX[d] * scale - ox, geo.labelY[d] * scale - oy, 4, 0, 2 * Math.PI);
      ctx.fillStyle = "#111111"; ctx.fill();
      ctx.lineWidth = 1.5; ctx.strokeStyle = "#ffffff"; ctx.stroke();
    }
    drawLabels(ctx, geo, scale, ox, oy, minX, minY, maxX, maxY, size);
    api.drawnAreas = visible;
    api.renders++;
    api.lastDrawMs = performance.now() - started;
    // [start, milliseconds, areas drawn] of the last draws, for the benchmark and debugging.
    api.drawLog.push([Math.round(started), Math.round(api.lastDrawMs), visible]);
    if (api.drawLog.length > 20) { api.drawLog.shift(); }
    api.lod = lod;
    if (values && !state.firstRenderDone) {
      state.firstRenderDone = true;
      api.ready = true;
      if (performance.mark) { performance.mark("riskmap-rendered"); }
    }
    api.renderedAt = performance.now();
    requestTiles(lod, minX, minY, maxX, maxY);
  }

  function drawLabels(ctx, geo, scale, ox, oy, minX, minY, maxX, maxY, size) {
    ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = "center"; ctx.textBaseline = "middle";
    ctx.lineWidth = 3; ctx.strokeStyle = "rgba(255,255,255,0.85)"; ctx.fillStyle = "#111111";
    var drawn = 0;
    for (var i = 0; i < geo.n && drawn < MAX_LABELS; i++) {
      if (geo.maxX[i] < minX || geo.minX[i] > maxX || geo.maxY[i] < minY || geo.minY[i] > maxY) {
        continue;
      }
      var width = (geo.maxX[i] - geo.minX[i]) * scale;
      var name = geo.names[i];
      if (width < name.length * 7 + 8 || (geo.maxY[i] - geo.minY[i]) * scale < 18) { continue; }
      var x = geo.labelX[i] * scale - ox, y = geo.labelY[i] * scale - oy;
      if (x < 0 || y < 0 || x > size.x || y > size.y) { continue; }
      ctx.strokeText(name, x, y); ctx.fillText(name, x, y);
      drawn++;
    }
  }

  // Finer detail per tile -------------------------------------------------------------------
  function requestTiles(lod, minX, minY, maxX, maxY) {
    var geo = state.geo;
    if (!geo || lod <= geo.baseLod) { return; }
    var z = Math.max(0, geo.lodZooms[lod] - geo.tileOffset);
    var tileSize = 256 / Math.pow(2, z);
    var x0 = Math.max(0, Math.floor(minX / tileSize)), x1 = Math.floor(maxX / tileSize);
    var y0 = Math.max(0, Math.floor(minY / tileSize)), y1 = Math.floor(maxY / tileSize);
    if ((x1 - x0 + 1) * (y1 - y0 + 1) > 16) { return; }
    for (var x = x0; x <= x1; x++) {
      for (var y = y0; y <= y1; y++) {
        var id = lod + ":" + z + "/" + x + "/" + y;
        if (state.tiles[id]) { continue; }
        state.tiles[id] = "pending";
        fetchTile(geo, lod, z + "/" + x + "/" + y, id);
      }
    }
  }

  function fetchTile(geo, lod, tile, id) {
    var s = api.state;
    var url = s.geometry_url + "?level=" + geo.level + "&lod=" + lod + "&countries=" +
      encodeURIComponent(s.countries) + "&tile=" + tile;
    api.tileRequests++;
    fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) { throw new Error("tile " + response.status); }
      return response.arrayBuffer();
    }).then(function (buffer) {
      if (state.geo !== geo) { return; }
      addChunk(geo, decode(buffer));
      state.tiles[id] = "done";
      scheduleDraw();
    }).catch(function () { state.tiles[id] = "failed"; });
  }

  // Loading a level and its values ----------------------------------------------------------
  function fetchGeometry(s) {
    var url = s.geometry_url + "?level=" + s.level + "&countries=" + encodeURIComponent(s.countries);
    api.geometryRequests++;
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) { throw new Error("geometry: HTTP " + response.status); }
      return response.arrayBuffer();
    }).then(function (buffer) { return newGeometry(decode(buffer)); });
  }

  function fetchValues(s) {
    var url = s.values_url + "?level=" + s.level + "&variable=" +
      encodeURIComponent(s.variable) + "&period=" + encodeURIComponent(s.period) +
      "&countries=" + encodeURIComponent(s.countries);
    api.valuesRequests++;
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) { throw new Error("values: HTTP " + response.status); }
      return response.json();
    });
  }

  function setStatus(text) {
    var status = document.getElementById("riskmap-status");
    if (status) { status.textContent = text; }
  }

  function apply(s) {
    var generation = ++state.generation;
    var geometryKey = s.level + "|" + s.countries;
    var reuse = state.geometryKey === geometryKey && state.geo;
    // Geometry (only when the level or the countries change) and values load in parallel.
    var geometry = reuse ? Promise.resolve(state.geo) : fetchGeometry(s);
    var values = fetchValues(s);
    return Promise.all([geometry, values]).then(function (loaded) {
      var geo = loaded[0], data = loaded[1];
      if (generation !== state.generation) { return; }
      if (data.key !== geo.key) {  // new boundaries meanwhile: start again with them
        state.geometryKey = null;
        return apply(s);
      }
      state.values = data;
      api.values = data;
      if (!reuse) {
        state.geo = geo; state.geometryKey = geometryKey; state.tiles = {};
        api.areaCount = geo.n; api.pcodes = geo.pcodes;
        var b = geo.bounds;
        state.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { animate: false });
      }
      var shown = data.classes.filter(function (c) { return c !== NO_DATA; }).length;
      setStatus(geo.n + " areas at admin level " + s.level + " (" + s.variable_label + ", " +
        (s.period === "latest" ? "latest round" : s.period) + "); " + shown +
        " with a score, " + (geo.n - shown) + " with insufficient data.");
      scheduleDraw();  // one draw on the next frame (fitBounds above asked for one too)
    }).catch(function (error) {
      api.error = String(error);
      setStatus("The map could not be loaded: " + error.message);
    });
  }

  function ensureMap(s) {
    var container = document.getElementById("riskmap");
    if (!container) { return Promise.reject(new Error("no map container")); }
    if (state.map && state.map.getContainer() === container && document.body.contains(container)) {
      return Promise.resolve();
    }
    if (state.map) { state.map.remove(); }
    state.map = null; state.geo = null; state.geometryKey = null; state.firstRenderDone = false;
    return loadLeaflet(s.vendor_url).then(function () {
      var map = window.L.map(container, {
        zoomAnimation: false, fadeAnimation: false, markerZoomAnimation: false,
        preferCanvas: true, worldCopyJump: false, zoomSnap: 0.25, minZoom: 1, maxZoom: 16,
        attributionControl: true,
      });
      map.attributionControl.setPrefix(false);
      map.setView([0, 0], 2);
      var canvas = document.createElement("canvas");
      canvas.className = "riskmap-layer";
      container.appendChild(canvas);
      var tooltip = document.createElement("div");
      tooltip.className = "riskmap-tooltip";
      tooltip.hidden = true;
      container.appendChild(tooltip);
      state.map = map; state.canvas = canvas; state.tooltip = tooltip;
      map.on("move zoom resize viewreset", scheduleDraw);
      map.on("click", function (e) {
        var i = areaAt(e.latlng);
        if (i >= 0) { openArea(state.geo.pcodes[i]); }
      });
      map.on("mousemove", function (e) { showTooltip(e); });
      map.on("mouseout", function () { tooltip.hidden = true; });
    });
  }

  function setTiles(s) {
    if (state.tileUrl === s.tile_url) { return; }
    if (state.tileLayer) { state.map.removeLayer(state.tileLayer); state.tileLayer = null; }
    state.tileUrl = s.tile_url;
    if (s.tile_url) {
      state.tileLayer = window.L.tileLayer(s.tile_url, { attribution: s.tile_attribution || "" });
      state.tileLayer.addTo(state.map);
    }
  }

  // Picking ---------------------------------------------------------------------------------
  function areaAt(latlng) {
    var geo = state.geo;
    if (!geo) { return -1; }
    var x = worldX(latlng.lng), y = worldY(latlng.lat);
    var lod = Math.max(geo.baseLod, lodForZoom(geo, state.map.getZoom() + 1));
    for (var i = 0; i < geo.n; i++) {
      if (x < geo.minX[i] || x > geo.maxX[i] || y < geo.minY[i] || y > geo.maxY[i]) { continue; }
      if (contains(geo, i, lod, x, y)) { return i; }
    }
    return -1;
  }

  function contains(geo, i, lod, x, y) {
    var slot = null;
    for (var k = lod; k >= 0 && !slot; k--) { if (geo.lods[k] && geo.lods[k].chunk[i]) { slot = geo.lods[k]; } }
    if (!slot) { slot = geo.lods[geo.baseLod]; }
    var chunk = slot.chunk[i], local = slot.local[i], inside = false;
    for (var r = chunk.areaRing[local]; r < chunk.areaRing[local + 1]; r++) {
      var start = chunk.ringStart[r], end = chunk.ringStart[r + 1];
      for (var p = start, q = end - 1; p < end; q = p++) {
        var xi = chunk.xs[p], yi = chunk.ys[p], xj = chunk.xs[q], yj = chunk.ys[q];
        if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) { inside = !inside; }
      }
    }
    return inside;
  }

  function describe(i) {
    var geo = state.geo, values = state.values;
    var lines = [geo.names[i] + " (" + geo.pcodes[i] + ")"];
    if (values) {
      var cls = values.classes[i];
      var value = values.values[i];
      lines.push(CLASS_LABELS[cls] + (value === null ? "" : " · " + value.toFixed(2)));
      if (values.hotspots[i] >= 0 && values.hotspot_names[values.hotspots[i]] !== "not_significant") {
        lines.push("Hotspot: " + values.hotspot_names[values.hotspots[i]].replace("_", " ") + "%" +
          (values.temporal[i] >= 0 ? " · " + values.temporal_names[values.temporal[i]] : ""));
      }
      if (values.stale[i]) { lines.push("Stale source data"); }
      if (values.period_codes[i] >= 0) { lines.push("Period " + values.period_names[values.period_codes[i]]); }
    }
    return lines;
  }

  function showTooltip(e) {
    var i = areaAt(e.latlng), tooltip = state.tooltip;
    if (i < 0) { tooltip.hidden = true; state.map.getContainer().style.cursor = ""; return; }
    state.map.getContainer().style.cursor = "pointer";
    tooltip.textContent = "";
    describe(i).forEach(function (line, n) {
      var div = document.createElement("div");
      if (n === 0) { div.className = "riskmap-tooltip-title"; }
      div.textContent = line;
      tooltip.appendChild(div);
    });
    tooltip.style.left = (e.containerPoint.x + 14) + "px";
    tooltip.style.top = (e.containerPoint.y + 14) + "px";
    tooltip.hidden = false;
  }

  function openArea(pcode) {
    // Navigate inside the single-page app (dcc.Location listens for this event).
    window.history.pushState({}, "", "/area/" + encodeURIComponent(pcode));
    window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
  }

  // Helpers for tests: where an area is on screen, its colour ------------------------------
  api.pointOf = function (pcode) {
    var geo = state.geo, i = geo ? geo.index[pcode] : undefined;
    if (i === undefined) { return null; }
    var scale = Math.pow(2, state.map.getZoom());
    var topLeft = state.map.containerPointToLayerPoint([0, 0]).add(state.map.getPixelOrigin());
    return { x: geo.labelX[i] * scale - topLeft.x, y: geo.labelY[i] * scale - topLeft.y };
  };
  api.focus = function (pcode, zoom) {
    var geo = state.geo, i = geo ? geo.index[pcode] : undefined;
    if (i === undefined) { return false; }
    var point = window.L.point(geo.labelX[i], geo.labelY[i]);
    state.map.setView(state.map.unproject(point, 0), zoom, { animate: false });
    return true;
  };
  api.tilesPending = function () {
    return Object.keys(state.tiles).filter(function (k) { return state.tiles[k] === "pending"; }).length;
  };
  api.baseLod = function () { return state.geo ? state.geo.baseLod : null; };
  api.colourOf = function (pcode) {
    var geo = state.geo, i = geo ? geo.index[pcode] : undefined;
    if (i === undefined || !state.values) { return null; }
    return COLOURS[state.values.classes[i]];
  };
  api.pixelAt = function (x, y) {
    var ratio = window.devicePixelRatio || 1;
    var data = state.canvas.getContext("2d").getImageData(Math.round(x * ratio), Math.round(y * ratio), 1, 1).data;
    return [data[0], data[1], data[2], data[3]];
  };

  // Dash clientside callback: the selectors changed ------------------------------------------
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.riskmap = {
    update: function (s) {
      if (!s) { return window.dash_clientside.no_update; }
      api.state = s;
      ensureMap(s).then(function () {
        setTiles(s);
        state.map.invalidateSize(false);
        return apply(s);
      }).catch(function (error) { api.error = String(error); setStatus(String(error.message || error)); });
      return window.dash_clientside.no_update;
    },
  };
})();
