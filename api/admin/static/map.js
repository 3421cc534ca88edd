// The locations map (api/admin/pages.py, docs/adr/0034): Leaflet as
// `make up` fetched it, one circle per location (no marker images), fitted
// to the markers. Tiles only when the server names a tile URL; otherwise
// the markers stand on the plain background of the map's box.
"use strict";

(function () {
  const box = document.getElementById("map");
  if (!box || typeof L === "undefined") return;
  const pins = JSON.parse(box.dataset.pins || "[]");
  const map = L.map(box, { attributionControl: Boolean(box.dataset.tiles) });
  if (box.dataset.tiles) {
    L.tileLayer(box.dataset.tiles, { attribution: box.dataset.attribution || "", maxZoom: 19 }).addTo(map);
  }
  const points = [];
  pins.forEach(function (p) {
    const colour = p.available > 0 ? "#067647" : "#b42318";
    const marker = L.circleMarker([p.lat, p.lon], { radius: 8, color: colour, fillColor: colour, fillOpacity: 0.7 });
    const link = document.createElement("a");
    link.href = p.href;
    link.textContent = p.name + " (" + p.available + " of " + p.evses + " available)";
    marker.bindPopup(link);
    marker.addTo(map);
    points.push([p.lat, p.lon]);
  });
  if (points.length === 1) map.setView(points[0], 14);
  else map.fitBounds(points, { padding: [24, 24], maxZoom: 16 });
  box.dataset.markers = String(points.length);
})();
