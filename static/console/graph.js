/* The console's graph view (templates/console/graph.html): draws the server's bounded drawing with
   Cytoscape.js, and adds to it on request (expand a neighbourhood, find a node, filter by type).

   Every piece of user text reaches the DOM through textContent; Cytoscape draws labels on its
   canvas. Never more than config.maxOnScreen nodes: an expansion past it is refused with a notice.
   window.memoryhubGraph is the Cytoscape instance (the browser tests count its nodes). */
(function () {
  "use strict";

  var configElement = document.getElementById("graph-config");
  if (!configElement || typeof window.cytoscape !== "function") {
    return; // without the library, the page stays the server-rendered list
  }
  var config = JSON.parse(configElement.textContent);
  var canvas = document.getElementById("graph-canvas");
  var controls = document.getElementById("graph-controls");
  var notice = document.getElementById("graph-notice");
  var summary = document.getElementById("graph-summary");
  var panelTitle = document.getElementById("graph-panel-title");
  var panelBody = document.getElementById("graph-panel-body");
  var entityList = document.getElementById("graph-entity-list");
  var relationList = document.getElementById("graph-relation-list");
  var findForm = document.getElementById("graph-find");
  var findInput = document.getElementById("graph-find-input");
  var matches = document.getElementById("graph-matches");
  var filterForm = document.getElementById("graph-filters");
  var entityTypeSelect = document.getElementById("graph-entity-type");
  var relationTypeSelect = document.getElementById("graph-relation-type");
  var COSE_MOST = 60;
  var selected = null;
  var panelRequest = 0;

  canvas.hidden = false;
  controls.hidden = false;

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
  }

  var cy = window.cytoscape({
    container: canvas,
    elements: [],
    minZoom: 0.05,
    maxZoom: 4,
    wheelSensitivity: 0.3,
    style: [
      {
        selector: "node",
        style: {
          label: "data(label)",
          "background-color": css("--accent"),
          color: css("--text"),
          "font-size": 11,
          "text-valign": "bottom",
          "text-margin-y": 3,
          "text-max-width": 120,
          "text-wrap": "ellipsis",
          width: "data(size)",
          height: "data(size)",
        },
      },
      {
        selector: "node:selected",
        style: { "background-color": css("--focus"), "border-width": 3, "border-color": css("--text") },
      },
      {
        selector: "edge",
        style: {
          width: 1.5,
          "line-color": css("--border"),
          "target-arrow-color": css("--border"),
          "target-arrow-shape": "triangle",
          "curve-style": "bezier",
          label: "data(label)",
          "font-size": 9,
          color: css("--muted"),
          "text-rotation": "autorotate",
        },
      },
    ],
  });
  window.memoryhubGraph = cy;
  // The page's settings (maxOnScreen is read at each expansion: a test lowers it to see the cap).
  window.memoryhubGraphConfig = config;

  // --- helpers ---------------------------------------------------------------------------------

  function element(tag, text, className) {
    var made = document.createElement(tag);
    if (text !== undefined && text !== null) {
      made.textContent = String(text);
    }
    if (className) {
      made.className = className;
    }
    return made;
  }

  function entityUrl(name) {
    return config.entityUrl + encodeURIComponent(name);
  }

  function focusUrl(name) {
    var path = config.entityUrl.replace(/entities\/$/, "graph");
    return path + "?focus=" + encodeURIComponent(name);
  }

  function when(value) {
    return value ? value.replace("T", " ").replace(/(\.\d+)?(Z|\+00:00)$/, " UTC") : "";
  }

  function say(text, link) {
    notice.textContent = text;
    if (link) {
      var anchor = element("a", link.text);
      anchor.href = link.href;
      notice.append(" ", anchor);
    }
    notice.hidden = !text;
  }

  function fetchJson(params) {
    var query = new URLSearchParams();
    Object.keys(params).forEach(function (key) {
      if (params[key] !== undefined && params[key] !== null && params[key] !== "") {
        query.set(key, params[key]);
      }
    });
    return fetch(config.dataUrl + "?" + query.toString(), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) {
          var message = body && body.error ? body.error.message : "the server answered " + response.status;
          throw new Error(message);
        }
        return body;
      });
    });
  }

  function filters() {
    return { entityType: entityTypeSelect.value, relationType: relationTypeSelect.value };
  }

  // --- drawing ---------------------------------------------------------------------------------

  function nodeElement(node) {
    return {
      group: "nodes",
      data: {
        id: node.name,
        label: node.name.length > 40 ? node.name.slice(0, 39) + "…" : node.name,
        entityType: node.entityType,
        degree: node.degree,
        observations: node.observationCount,
        size: Math.min(48, 14 + 4 * Math.sqrt(node.degree || 0)),
      },
    };
  }

  function edgeId(relation) {
    return JSON.stringify([relation.from, relation.relationType, relation.to]);
  }

  function edgeElements(relations) {
    return relations
      .filter(function (relation) {
        return cy.getElementById(relation.from).length && cy.getElementById(relation.to).length;
      })
      .filter(function (relation) {
        return !cy.getElementById(edgeId(relation)).length;
      })
      .map(function (relation) {
        return {
          group: "edges",
          data: { id: edgeId(relation), source: relation.from, target: relation.to, label: relation.relationType },
        };
      });
  }

  function layout() {
    // cose looks best but its cost grows fast (headless chromium: 136 ms at 60 nodes, 388 ms at
    // 150, 2.4 s at 400); concentric stays near-linear (41 ms at 150, 56 ms at 400), so the tab
    // never freezes however much is expanded.
    var options =
      cy.nodes().length <= COSE_MOST
        ? { name: "cose", numIter: 600, randomize: true, nodeRepulsion: 8000, idealEdgeLength: 60 }
        : { name: "concentric", minNodeSpacing: 12, concentric: function (n) { return n.degree(); } };
    options.animate = false;
    options.fit = true;
    options.padding = 30;
    cy.layout(options).run();
  }

  function redrawLists() {
    entityList.replaceChildren();
    var nodes = cy.nodes().sort(function (a, b) {
      return b.data("degree") - a.data("degree") || (a.id() < b.id() ? -1 : 1);
    });
    nodes.forEach(function (node) {
      var item = element("li");
      var button = element("button", node.id(), "graph-node-button");
      button.type = "button";
      button.setAttribute("aria-pressed", node.id() === selected ? "true" : "false");
      button.addEventListener("click", function () {
        select(node.id(), true);
      });
      item.append(button, " ", element("span", node.data("entityType") + " · " + node.data("degree") + " relations", "meta"));
      entityList.append(item);
    });
    if (!nodes.length) {
      entityList.append(element("li", "No entities match."));
    }
    relationList.replaceChildren();
    cy.edges().forEach(function (edge) {
      var item = element("li");
      item.append(edge.source().id(), " ", element("span", edge.data("label"), "pill"), " ", edge.target().id());
      relationList.append(item);
    });
    if (!cy.edges().length) {
      relationList.append(element("li", "No relations among them."));
    }
  }

  function replaceDrawing(drawing, description) {
    cy.elements().remove();
    selected = null;
    addDrawing(drawing);
    summary.textContent = description + (drawing.truncated ? " More are in reach than are drawn." : "");
  }

  function addDrawing(drawing) {
    var fresh = drawing.nodes.filter(function (node) {
      return !cy.getElementById(node.name).length;
    });
    cy.batch(function () {
      cy.add(fresh.map(nodeElement));
      cy.add(edgeElements(drawing.relations));
    });
    layout();
    redrawLists();
    return fresh.length;
  }

  // --- the side panel ----------------------------------------------------------------------------

  function relationItems(title, relations, arrow) {
    var section = element("div");
    section.append(element("h4", title));
    var list = element("ul", null, "graph-panel-list");
    relations.forEach(function (relation) {
      var item = element("li");
      var link = element("a", relation.other);
      link.href = entityUrl(relation.other);
      item.append(arrow + " ", element("span", relation.relationType, "pill"), " ", link);
      if (!relation.current) {
        item.append(" ", element("span", "past", "pill pill-past"));
      }
      list.append(item);
    });
    if (!relations.length) {
      list.append(element("li", "None."));
    }
    section.append(list);
    return section;
  }

  function showFacts(facts) {
    var entity = facts.entity;
    panelTitle.textContent = entity.name;
    panelBody.replaceChildren();
    panelBody.append(
      element("p", entity.entityType + " · " + (entity.inDegree + entity.outDegree) + " relations · " + entity.observationCount + " observations", "meta")
    );
    var actions = element("div", null, "actions-row");
    var page = element("a", "Open entity page");
    page.href = entityUrl(entity.name);
    var expand = element("button", "Expand neighbourhood");
    expand.type = "button";
    expand.addEventListener("click", function () {
      expandFrom(entity.name);
    });
    actions.append(expand, page);
    panelBody.append(actions);
    panelBody.append(element("h3", "Observations"));
    var list = element("ul", null, "graph-panel-list");
    facts.observations.forEach(function (observation) {
      var item = element("li");
      item.append(element("span", observation.text, "memory-text"));
      var meta = element("span", null, "meta graph-obs-meta");
      var link = element("a", when(observation.createdAt));
      link.href = observation.url;
      meta.append(link);
      if (observation.actorId) {
        meta.append(" · " + observation.actorId);
      }
      item.append(" ", meta);
      if (!observation.current) {
        item.append(" ", element("span", "past", "pill pill-past"));
      }
      list.append(item);
    });
    if (!facts.observations.length) {
      list.append(element("li", "None."));
    }
    panelBody.append(list);
    if (facts.nextObservationOffset !== null) {
      panelBody.append(element("p", "More on the entity page.", "meta"));
    }
    panelBody.append(element("h3", "Relations"));
    panelBody.append(relationItems("Outgoing", facts.outgoing, "→"), relationItems("Incoming", facts.incoming, "←"));
  }

  function select(name, fromList) {
    selected = name;
    cy.nodes(":selected").unselect();
    var node = cy.getElementById(name);
    if (node.length) {
      node.select();
      cy.animate({ center: { eles: node } }, { duration: 150 });
    }
    entityList.querySelectorAll("button").forEach(function (button) {
      button.setAttribute("aria-pressed", button.textContent === name ? "true" : "false");
    });
    panelTitle.textContent = name;
    panelBody.replaceChildren(element("p", "Loading…", "meta"));
    var request = ++panelRequest;
    fetchJson({ mode: "entity", name: name })
      .then(function (facts) {
        if (request === panelRequest) {
          showFacts(facts);
          if (fromList) {
            document.getElementById("graph-panel").focus();
          }
        }
      })
      .catch(function (error) {
        if (request === panelRequest) {
          panelBody.replaceChildren(element("p", "Could not load " + name + ": " + error.message));
        }
      });
  }

  function expandFrom(name) {
    var params = Object.assign({ mode: "neighbours", name: name, depth: 1 }, filters());
    fetchJson(params)
      .then(function (drawing) {
        var fresh = drawing.nodes.filter(function (node) {
          return !cy.getElementById(node.name).length;
        });
        if (cy.nodes().length + fresh.length > config.maxOnScreen) {
          say(
            "Expanding " + name + " would draw " + (cy.nodes().length + fresh.length) + " entities, more than the " +
              config.maxOnScreen + " this view draws at once. Filter by type, or:",
            { text: "draw the neighbourhood of " + name + " alone", href: focusUrl(name) }
          );
          return;
        }
        var added = addDrawing(drawing);
        say(added ? "Added " + added + " neighbours of " + name + "." : name + " has no neighbours beyond those drawn.");
        if (drawing.truncated) {
          say(notice.textContent + " It has more neighbours than one expansion draws.");
        }
        select(name, false);
      })
      .catch(function (error) {
        say("Could not expand " + name + ": " + error.message);
      });
  }

  function focusOn(name) {
    var params = Object.assign({ mode: "neighbours", name: name, depth: config.depth }, filters());
    return fetchJson(params).then(function (drawing) {
      replaceDrawing(drawing, "The neighbourhood of " + name + " (" + drawing.nodes.length + " entities).");
      config.focus = name;
      select(name, false);
    });
  }

  function loadSample() {
    return fetchJson(Object.assign({ mode: "sample" }, filters())).then(function (drawing) {
      config.focus = "";
      replaceDrawing(drawing, "The " + drawing.nodes.length + " most connected entities, with the relations among them.");
      panelTitle.textContent = "Selected entity";
      panelBody.replaceChildren(element("p", "Choose an entity in the drawing or the list.", "meta"));
    });
  }

  // --- controls ----------------------------------------------------------------------------------

  cy.on("tap", "node", function (event) {
    select(event.target.id(), false);
  });

  controls.addEventListener("click", function (event) {
    var action = event.target.getAttribute && event.target.getAttribute("data-graph-action");
    var centre = { x: canvas.clientWidth / 2, y: canvas.clientHeight / 2 };
    if (action === "zoom-in") {
      cy.zoom({ level: cy.zoom() * 1.25, renderedPosition: centre });
    } else if (action === "zoom-out") {
      cy.zoom({ level: cy.zoom() / 1.25, renderedPosition: centre });
    } else if (action === "fit") {
      cy.fit(undefined, 30);
    } else if (action === "sample") {
      say("");
      loadSample().catch(function (error) {
        say("Could not load the sample: " + error.message);
      });
    }
  });

  findForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var query = findInput.value.trim();
    matches.replaceChildren();
    if (!query) {
      matches.hidden = true;
      return;
    }
    fetchJson({ mode: "find", q: query, entityType: entityTypeSelect.value })
      .then(function (body) {
        matches.hidden = false;
        body.matches.forEach(function (match) {
          var item = element("li");
          var button = element("button", match.name, "button-secondary");
          button.type = "button";
          button.addEventListener("click", function () {
            matches.hidden = true;
            focusOn(match.name).catch(function (error) {
              say("Could not draw " + match.name + ": " + error.message);
            });
          });
          item.append(button, " ", element("span", match.entityType, "meta"));
          matches.append(item);
        });
        if (!body.matches.length) {
          matches.append(element("li", "No entity matches " + query + "."));
        }
      })
      .catch(function (error) {
        matches.hidden = false;
        matches.append(element("li", "Could not search: " + error.message));
      });
  });

  function applyFilters(event) {
    if (event) {
      event.preventDefault();
    }
    say("");
    var done = config.focus ? focusOn(config.focus) : loadSample();
    done.catch(function (error) {
      say("Could not apply the filters: " + error.message);
    });
  }
  filterForm.addEventListener("submit", applyFilters);
  entityTypeSelect.addEventListener("change", function () {
    applyFilters();
  });
  relationTypeSelect.addEventListener("change", function () {
    applyFilters();
  });

  addDrawing(config.drawing);
  if (config.focus) {
    select(config.focus, false);
  }
  canvas.setAttribute("data-ready", "true");
})();
