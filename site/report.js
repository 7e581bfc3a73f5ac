/* The script of the hpcsweep report page: the trial table and the plots.
 *
 * It reads window.HPCSWEEP_REPORT, set by data.js, and puts every value from the
 * data into the page with textContent or as an attribute value, never as HTML.
 * Text handed to plotly.js goes through plotlyText(), because plotly reads a
 * subset of HTML tags in labels.
 */
(function () {
  "use strict";

  var DATA_FORMAT = 1;
  var STATUSES = ["new", "running", "completed", "interrupted", "broken", "lost"];
  var PAGE_SIZES = [50, 200, 1000];
  var EMPTY_PLOT_TEXT = "Nothing to plot yet: no trial has completed with an objective.";
  var PLOT_CONFIG = { displaylogo: false, responsive: true };

  var report = window.HPCSWEEP_REPORT;
  var root = document.documentElement;

  // ------------------------------------------------------------- helpers

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function byId(id) {
    return document.getElementById(id);
  }

  function showPageError(message) {
    var node = byId("page-error");
    node.textContent = message;
    node.hidden = false;
  }

  function isNumber(value) {
    return typeof value === "number" && isFinite(value);
  }

  function formatNumber(value) {
    if (Number.isInteger(value)) return String(value);
    var magnitude = Math.abs(value);
    if (magnitude >= 1e-3 && magnitude < 1e6) return String(Number(value.toPrecision(6)));
    return value.toExponential(4);
  }

  /* The text of a value in a table cell or a category label. */
  function displayValue(value) {
    if (value === null || value === undefined) return "";
    if (isNumber(value)) return formatNumber(value);
    if (typeof value === "string") return value;
    if (Array.isArray(value) && value.every(isNumber)) {
      // A list-valued parameter: round its numbers as in the other cells.
      return "[" + value.map(formatNumber).join(", ") + "]";
    }
    return JSON.stringify(value);
  }

  /* Escape text for plotly.js, which turns <b>, <br>, <a> and entities in labels into markup. */
  function plotlyText(value) {
    return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  /* Accept relative links and file:// URLs only: report.py writes nothing else. */
  function safeHref(url) {
    if (typeof url !== "string" || url === "") return null;
    if (/^file:\/\//i.test(url)) return url;
    if (/^[a-z][a-z0-9+.\-]*:/i.test(url) || url.indexOf("//") === 0) return null;
    return url;
  }

  // ---------------------------------------------------------------- data

  function checkData() {
    if (!report || typeof report !== "object") {
      showPageError("data.js did not load: keep it beside index.html, or run hpcsweep report again.");
      return false;
    }
    if (report.format !== DATA_FORMAT) {
      showPageError("data.js has format " + report.format + " but this page reads format " + DATA_FORMAT +
        "; run hpcsweep report again to rewrite both.");
      return false;
    }
    var generated = document.querySelector('meta[name="hpcsweep-generated"]');
    if (generated && Number(generated.content) !== report.generated_time) {
      // The report was rewritten between the loads of index.html and data.js.
      showPageError("hpcsweep report rewrote this page while it loaded: reload it to see the overview " +
        "that matches the table.");
    }
    return true;
  }

  /* The value of a dimension in a trial: a parameter, or one element of a list-valued parameter. */
  function dimensionValue(trial, dimension) {
    var value = trial.params ? trial.params[dimension.param] : undefined;
    if (dimension.index !== null && dimension.index !== undefined) {
      return Array.isArray(value) ? value[dimension.index] : undefined;
    }
    return value;
  }

  // --------------------------------------------------------------- table

  function buildColumns() {
    var columns = [
      { key: "number", label: "#", get: function (t) { return t.number; }, numeric: true },
      { key: "id", label: "id", get: function (t) { return t.id; }, code: true },
      { key: "status", label: "status", get: function (t) { return t.status; } },
      { key: "objective", label: "objective", get: function (t) { return t.objective; }, numeric: true }
    ];
    var seen = Object.create(null);
    report.dimensions.forEach(function (dimension) {
      if (seen[dimension.param]) return;
      seen[dimension.param] = true;
      columns.push({
        key: "param:" + dimension.param, label: dimension.param, group: "parameter",
        get: function (t) { return t.params ? t.params[dimension.param] : undefined; }
      });
    });
    report.result_names.forEach(function (name) {
      columns.push({
        key: "result:" + name, label: name, group: "result",
        get: function (t) { return t.results ? t.results[name] : undefined; }
      });
    });
    columns.push(
      { key: "attempts", label: "attempts", get: function (t) { return t.attempts; }, numeric: true },
      { key: "exit_code", label: "exit code", get: function (t) { return t.exit_code; }, numeric: true },
      { key: "reason", label: "reason", get: function (t) { return t.reason; } },
      { key: "logs", label: "logs", sortable: false, filterable: false }
    );
    return columns;
  }

  /* Order values: missing last, numbers before text, numbers by value, text by code point. */
  function compareValues(a, b) {
    var aMissing = a === null || a === undefined || a === "";
    var bMissing = b === null || b === undefined || b === "";
    if (aMissing || bMissing) return aMissing === bMissing ? 0 : (aMissing ? 1 : -1);
    var aNumber = isNumber(a), bNumber = isNumber(b);
    if (aNumber && bNumber) return a - b;
    if (aNumber !== bNumber) return aNumber ? -1 : 1;
    var aText = displayValue(a), bText = displayValue(b);
    return aText < bText ? -1 : (aText > bText ? 1 : 0);
  }

  /* Parse the filter text: "< 0.1", ">= 3", "!= relu", "= relu", or text to look for. */
  function parseCondition(text) {
    var trimmed = text.trim();
    if (trimmed === "") return null;
    var match = /^(<=|>=|!=|<|>|=)\s*(.*)$/.exec(trimmed);
    if (!match) {
      var needle = trimmed.toLowerCase();
      return function (value) { return displayValue(value).toLowerCase().indexOf(needle) !== -1; };
    }
    var operator = match[1], operand = match[2];
    var number = operand === "" ? NaN : Number(operand);
    if (operator === "=" || operator === "!=") {
      var equal = function (value) {
        return isNumber(value) && !isNaN(number) ? value === number : displayValue(value) === operand;
      };
      return operator === "=" ? equal : function (value) { return !equal(value); };
    }
    if (isNaN(number)) return function () { return false; };
    return function (value) {
      if (!isNumber(value)) return false;
      if (operator === "<") return value < number;
      if (operator === "<=") return value <= number;
      if (operator === ">") return value > number;
      return value >= number;
    };
  }

  function TrialTable(trials) {
    this.trials = trials;
    this.columns = buildColumns();
    this.columnsByKey = Object.create(null);
    this.columns.forEach(function (column) { this.columnsByKey[column.key] = column; }, this);
    // data.js lists the trials best objective first, so that is the initial order.
    this.sortKey = "objective";
    this.sortDescending = report.experiment.maximize;
    this.status = "";
    this.filterKey = "";
    this.condition = null;
    this.page = 0;
    this.pageSize = PAGE_SIZES[0];
    this.rows = trials.slice();
    this.headerButtons = Object.create(null);
  }

  TrialTable.prototype.setUp = function () {
    var self = this;
    var counts = Object.create(null);
    this.trials.forEach(function (t) { counts[t.status] = (counts[t.status] || 0) + 1; });
    var statusSelect = byId("filter-status");
    STATUSES.concat(Object.keys(counts).filter(function (s) { return STATUSES.indexOf(s) === -1; }))
      .forEach(function (status) {
        var option = element("option", null, status + " (" + (counts[status] || 0) + ")");
        option.value = status;
        statusSelect.appendChild(option);
      });
    statusSelect.addEventListener("change", function () {
      self.status = statusSelect.value;
      self.page = 0;
      self.update();
    });

    var columnSelect = byId("filter-column");
    var filterable = this.columns.filter(function (c) { return c.filterable !== false; });
    // Parameters first: filtering by parameter is the common case.
    filterable.sort(function (a, b) { return (a.group === "parameter" ? 0 : 1) - (b.group === "parameter" ? 0 : 1); });
    filterable.forEach(function (column) {
      var label = column.group ? column.group + " " + column.label : column.label;
      var option = element("option", null, label);
      option.value = column.key;
      columnSelect.appendChild(option);
    });
    this.filterKey = filterable.length ? filterable[0].key : "";
    var valueInput = byId("filter-value");
    var applyFilter = function () {
      self.filterKey = columnSelect.value;
      self.condition = parseCondition(valueInput.value);
      self.page = 0;
      self.update();
    };
    columnSelect.addEventListener("change", applyFilter);
    valueInput.addEventListener("input", applyFilter);
    byId("trial-controls").addEventListener("submit", function (event) { event.preventDefault(); });

    var sizeSelect = byId("page-size");
    PAGE_SIZES.forEach(function (size) {
      var option = element("option", null, String(size));
      option.value = String(size);
      sizeSelect.appendChild(option);
    });
    sizeSelect.addEventListener("change", function () {
      self.pageSize = Number(sizeSelect.value);
      self.page = 0;
      self.update();
    });
    byId("page-previous").addEventListener("click", function () { self.page -= 1; self.update(); });
    byId("page-next").addEventListener("click", function () { self.page += 1; self.update(); });

    this.buildHeader();
    this.update();
  };

  TrialTable.prototype.buildHeader = function () {
    var self = this;
    var row = document.querySelector("#trial-table thead tr");
    this.columns.forEach(function (column) {
      var cell = element("th");
      cell.scope = "col";
      cell.dataset.key = column.key;
      if (column.numeric) cell.className = "number";
      if (column.sortable === false) {
        cell.textContent = column.label;
      } else {
        var button = element("button", "sort", column.label);
        button.type = "button";
        button.title = "sort by " + column.label;
        button.addEventListener("click", function () { self.sortBy(column.key); });
        cell.appendChild(button);
        self.headerButtons[column.key] = cell;
      }
      row.appendChild(cell);
    });
  };

  TrialTable.prototype.sortBy = function (key) {
    if (this.sortKey === key) {
      this.sortDescending = !this.sortDescending;
    } else {
      this.sortKey = key;
      this.sortDescending = false;
    }
    this.page = 0;
    this.update();
  };

  TrialTable.prototype.computeRows = function () {
    var status = this.status;
    var condition = this.condition;
    var filterColumn = this.columnsByKey[this.filterKey];
    var rows = this.trials.filter(function (trial) {
      if (status && trial.status !== status) return false;
      if (condition && filterColumn && !condition(filterColumn.get(trial))) return false;
      return true;
    });
    var column = this.columnsByKey[this.sortKey];
    var direction = this.sortDescending ? -1 : 1;
    rows.sort(function (a, b) {
      var first = column.get(a), second = column.get(b);
      var firstMissing = first === null || first === undefined || first === "";
      var secondMissing = second === null || second === undefined || second === "";
      // Missing values stay last in both directions; ties keep the trial number order.
      var order = firstMissing || secondMissing ? compareValues(first, second) : direction * compareValues(first, second);
      return order || a.number - b.number;
    });
    this.rows = rows;
  };

  TrialTable.prototype.update = function () {
    this.computeRows();
    var pageCount = Math.max(1, Math.ceil(this.rows.length / this.pageSize));
    this.page = Math.min(Math.max(this.page, 0), pageCount - 1);
    var start = this.page * this.pageSize;
    var pageRows = this.rows.slice(start, start + this.pageSize);

    var body = document.querySelector("#trial-table tbody");
    var fragment = document.createDocumentFragment();
    pageRows.forEach(function (trial) { fragment.appendChild(this.renderRow(trial)); }, this);
    body.replaceChildren(fragment);

    var sortDirection = this.sortDescending ? "descending" : "ascending";
    for (var key in this.headerButtons) {
      this.headerButtons[key].setAttribute("aria-sort", key === this.sortKey ? sortDirection : "none");
    }
    var filtered = this.status !== "" || this.condition !== null;
    byId("trial-total").textContent = String(this.trials.length);
    byId("trial-matching").textContent = String(this.rows.length);
    byId("trial-matching-text").hidden = !filtered;
    byId("trial-range").textContent = pageRows.length
      ? (start + 1) + "–" + (start + pageRows.length) : "none";
    byId("page-label").textContent = "page " + (this.page + 1) + " of " + pageCount;
    byId("page-previous").disabled = this.page === 0;
    byId("page-next").disabled = this.page >= pageCount - 1;
  };

  TrialTable.prototype.renderRow = function (trial) {
    var row = element("tr");
    row.dataset.trial = trial.id;
    this.columns.forEach(function (column) {
      var cell = element("td");
      if (column.key === "status") {
        var known = STATUSES.indexOf(trial.status) !== -1 ? trial.status : "unknown";
        cell.appendChild(element("span", "status status-" + known, trial.status));
      } else if (column.key === "reason") {
        this.fillReason(cell, trial);
      } else if (column.key === "logs") {
        this.fillLogs(cell, trial);
      } else {
        var value = column.get(trial);
        var text = displayValue(value);
        if (column.code) {
          cell.appendChild(element("code", null, text));
        } else {
          cell.textContent = text;
        }
        if (column.numeric || isNumber(value)) cell.className = "number";
        // The cell rounds numbers and may clip long text: the tooltip shows the whole value.
        if (value !== null && value !== undefined && typeof value !== "string") cell.title = JSON.stringify(value);
      }
      row.appendChild(cell);
    }, this);
    return row;
  };

  TrialTable.prototype.fillReason = function (cell, trial) {
    if (trial.reason) cell.appendChild(element("span", null, trial.reason));
    if (trial.stderr_tail) {
      var details = element("details");
      details.appendChild(element("summary", null, "stderr tail"));
      details.appendChild(element("pre", "stderr-tail", trial.stderr_tail));
      cell.appendChild(details);
    }
  };

  TrialTable.prototype.fillLogs = function (cell, trial) {
    var added = 0;
    [["stdout", trial.stdout], ["stderr", trial.stderr]].forEach(function (pair) {
      var href = safeHref(pair[1]);
      if (!href) return;
      if (added) cell.appendChild(document.createTextNode(" "));
      var link = element("a", "log-link", pair[0]);
      link.href = href;
      cell.appendChild(link);
      added += 1;
    });
    if (!added) cell.appendChild(element("span", "muted", "none"));
  };

  // --------------------------------------------------------------- plots

  function completedTrials() {
    return report.trials.filter(function (t) { return isNumber(t.objective); });
  }

  function objectiveTitle() {
    return report.experiment.maximize ? "objective (higher is better)" : "objective (lower is better)";
  }

  function bestSoFar(values) {
    var best = [];
    var current = null;
    values.forEach(function (value) {
      if (current === null || (report.experiment.maximize ? value > current : value < current)) current = value;
      best.push(current);
    });
    return best;
  }

  function baseLayout(extra) {
    var layout = {
      margin: { l: 70, r: 20, t: 20, b: 60 },
      height: 360,
      hovermode: "closest",
      showlegend: true,
      legend: { orientation: "h", y: -0.22 },
      yaxis: { title: { text: objectiveTitle() }, automargin: true }
    };
    for (var key in extra) layout[key] = extra[key];
    return layout;
  }

  function hoverTexts(trials) {
    return trials.map(function (t) { return "trial " + plotlyText(t.id) + " (#" + t.number + ")"; });
  }

  function setPlotMessage(container, text, state) {
    container.replaceChildren(element("p", "plot-message", text));
    container.dataset.state = state;
  }

  function byCompletion(trials) {
    return trials.slice().sort(function (a, b) {
      return ((a.end_time || 0) - (b.end_time || 0)) || (a.number - b.number);
    });
  }

  function drawTimePlot(container, trials) {
    var ordered = byCompletion(trials).filter(function (t) { return isNumber(t.end_time); });
    if (!ordered.length) {
      setPlotMessage(container, "No completed trial has an end time.", "empty");
      return null;
    }
    var times = ordered.map(function (t) { return new Date(t.end_time * 1000); });
    var values = ordered.map(function (t) { return t.objective; });
    return Plotly.newPlot(container, [
      { type: "scatter", mode: "markers", name: "trial", x: times, y: values, text: hoverTexts(ordered),
        hoverinfo: "x+y+text", marker: { size: 6, opacity: 0.7 } },
      { type: "scatter", mode: "lines", name: "best so far", x: times, y: bestSoFar(values),
        line: { shape: "hv", width: 2 }, hoverinfo: "x+y" }
    ], baseLayout({ xaxis: { title: { text: "end time" }, type: "date" } }), PLOT_CONFIG);
  }

  function drawRegretPlot(container, trials) {
    var ordered = byCompletion(trials);
    var positions = ordered.map(function (t, index) { return index + 1; });
    var values = ordered.map(function (t) { return t.objective; });
    return Plotly.newPlot(container, [
      { type: "scatter", mode: "markers", name: "trial", x: positions, y: values, text: hoverTexts(ordered),
        hoverinfo: "x+y+text", marker: { size: 6, opacity: 0.7 } },
      { type: "scatter", mode: "lines", name: "best so far", x: positions, y: bestSoFar(values),
        line: { shape: "hv", width: 2 }, hoverinfo: "x+y" }
    ], baseLayout({ xaxis: { title: { text: "completed trials" } } }), PLOT_CONFIG);
  }

  /* The categories of a choices dimension: its options in order, then any other value seen. */
  function categoriesOf(dimension, trials) {
    var labels = [];
    var index = new Map();  // a Map, because a label may be "constructor" or "__proto__"
    var add = function (value) {
      var label = displayValue(value);
      if (!index.has(label)) {
        index.set(label, labels.length);
        labels.push(label);
      }
    };
    (dimension.options || []).forEach(add);
    trials.forEach(function (t) { add(dimensionValue(t, dimension)); });
    return { labels: labels, index: index };
  }

  function logTicks(values) {
    var low = Math.floor(Math.min.apply(null, values));
    var high = Math.ceil(Math.max.apply(null, values));
    var ticks = [];
    for (var exponent = low; exponent <= high; exponent += 1) ticks.push(exponent);
    return { tickvals: ticks, ticktext: ticks.map(function (e) { return "1e" + e; }) };
  }

  function parallelDimension(dimension, trials) {
    var entry = { label: plotlyText(dimension.name) };
    if (dimension.categorical) {
      var categories = categoriesOf(dimension, trials);
      entry.values = trials.map(function (t) { return categories.index.get(displayValue(dimensionValue(t, dimension))); });
      entry.tickvals = categories.labels.map(function (label, position) { return position; });
      // parcoords writes tick text as plain text (plotly.js 4.1), unlike its labels.
      entry.ticktext = categories.labels;
      return entry;
    }
    var values = trials.map(function (t) { return dimensionValue(t, dimension); });
    if (!values.every(isNumber)) return null;
    if (dimension.log && values.every(function (v) { return v > 0; })) {
      entry.values = values.map(Math.log10);
      var ticks = logTicks(entry.values);
      entry.tickvals = ticks.tickvals;
      entry.ticktext = ticks.ticktext;
      entry.label = plotlyText(dimension.name + " (log)");
    } else {
      entry.values = values;
    }
    return entry;
  }

  function webglAvailable() {
    try {
      var canvas = document.createElement("canvas");
      return !!(canvas.getContext("webgl") || canvas.getContext("experimental-webgl"));
    } catch (error) {
      return false;
    }
  }

  function drawParallelPlot(container, trials) {
    if (!webglAvailable()) {
      setPlotMessage(container, "Parallel coordinates need WebGL, which this browser does not provide.", "failed");
      return null;
    }
    var dimensions = [];
    report.dimensions.forEach(function (dimension) {
      var entry = parallelDimension(dimension, trials);
      if (entry) dimensions.push(entry);
    });
    var objectives = trials.map(function (t) { return t.objective; });
    dimensions.push({ label: "objective", values: objectives });
    return Plotly.newPlot(container, [{
      type: "parcoords",
      dimensions: dimensions,
      line: { color: objectives, colorscale: "Viridis", reversescale: !report.experiment.maximize,
              showscale: true, colorbar: { title: { text: "objective" } } }
    }], { margin: { l: 70, r: 70, t: 50, b: 30 }, height: 420 }, PLOT_CONFIG);
  }

  function drawParameterPlot(container, dimension, trials, best) {
    var xs = trials.map(function (t) { return dimensionValue(t, dimension); });
    var xaxis = { title: { text: plotlyText(dimension.name) }, automargin: true };
    if (dimension.categorical) {
      var categories = categoriesOf(dimension, trials);
      xs = xs.map(function (value) { return plotlyText(displayValue(value)); });
      xaxis.type = "category";
      xaxis.categoryorder = "array";
      xaxis.categoryarray = categories.labels.map(plotlyText);
    } else if (dimension.log) {
      xaxis.type = "log";
    }
    var traces = [{ type: "scatter", mode: "markers", name: "trial", x: xs, y: trials.map(function (t) { return t.objective; }),
                    text: hoverTexts(trials), hoverinfo: "x+y+text", marker: { size: 6, opacity: 0.6 } }];
    if (best) {
      var bestX = dimensionValue(best, dimension);
      traces.push({ type: "scatter", mode: "markers", name: "best trial",
                    x: [dimension.categorical ? plotlyText(displayValue(bestX)) : bestX], y: [best.objective],
                    text: hoverTexts([best]), hoverinfo: "x+y+text",
                    marker: { size: 12, symbol: "star", color: "#d62728" } });
    }
    return Plotly.newPlot(container, traces, baseLayout({ xaxis: xaxis }), PLOT_CONFIG);
  }

  function bestOf(trials) {
    var best = null;
    trials.forEach(function (t) {
      if (best === null || (report.experiment.maximize ? t.objective > best.objective : t.objective < best.objective)) best = t;
    });
    return best;
  }

  /* Create the plot containers and return the plots to draw, as [container, draw] pairs. */
  function preparePlots() {
    var trials = completedTrials();
    var grid = byId("plot-params");
    if (!trials.length) {
      document.querySelectorAll("[data-plot]").forEach(function (container) {
        setPlotMessage(container, EMPTY_PLOT_TEXT, "empty");
      });
      setPlotMessage(grid, EMPTY_PLOT_TEXT, "empty");
      return [];
    }
    var best = bestOf(trials);
    var jobs = [
      [byId("plot-time"), function (c) { return drawTimePlot(c, trials); }],
      [byId("plot-regret"), function (c) { return drawRegretPlot(c, trials); }],
      [byId("plot-parallel"), function (c) { return drawParallelPlot(c, trials); }]
    ];
    if (!report.dimensions.length) {
      setPlotMessage(grid, "The search space has no parameter.", "empty");
    }
    report.dimensions.forEach(function (dimension, position) {
      var figure = element("figure", "plot-figure");
      figure.appendChild(element("figcaption", null, dimension.name + (dimension.log ? " (log axis)" : "")));
      var container = element("div", "plot");
      container.id = "plot-param-" + position;
      container.dataset.plot = "parameter";
      figure.appendChild(container);
      grid.appendChild(figure);
      jobs.push([container, function (c) { return drawParameterPlot(c, dimension, trials, best); }]);
    });
    jobs.forEach(function (job) { job[0].dataset.state = "waiting"; });
    return jobs;
  }

  /* Run a task when the page is idle, so that clicks and typing go first. */
  function whenIdle(task) {
    if ("requestIdleCallback" in window) {
      window.requestIdleCallback(task, { timeout: 1000 });
    } else {
      setTimeout(task, 0);
    }
  }

  function drawPlot(job) {
    var container = job[0];
    container.dataset.state = "drawing";
    var fail = function (error) {
      setPlotMessage(container, "This plot failed: " + error.message, "failed");
      throw error;
    };
    var drawn;
    try {
      drawn = job[1](container);
    } catch (error) {
      fail(error);
    }
    if (drawn) {
      drawn.then(function () {
        container.dataset.state = "drawn";
        performance.mark("hpcsweep:plot-drawn:" + container.id);
      }, fail);
    }
  }

  /* Draw each plot in an idle period of its own once it nears the viewport, so
   * that a large experiment keeps the table responsive while plots are drawn. */
  function drawPlotsInView(jobs) {
    if (!("IntersectionObserver" in window)) {
      jobs.forEach(function (job) { whenIdle(function () { drawPlot(job); }); });
      return;
    }
    var pending = new Map(jobs.map(function (job) { return [job[0], job]; }));
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        var job = pending.get(entry.target);
        if (!entry.isIntersecting || !job) return;
        observer.unobserve(entry.target);
        pending.delete(entry.target);
        whenIdle(function () { drawPlot(job); });
      });
    }, { rootMargin: "300px 0px" });
    jobs.forEach(function (job) { observer.observe(job[0]); });
  }

  /* Load plotly.min.js, named by the page's hpcsweep-plotly meta element, then draw the plots. */
  function loadPlotly(jobs) {
    var script = document.createElement("script");
    script.src = document.querySelector('meta[name="hpcsweep-plotly"]').content;
    script.onload = function () { drawPlotsInView(jobs); };
    script.onerror = function () {
      jobs.forEach(function (job) {
        setPlotMessage(job[0], "plotly.min.js did not load: keep it beside index.html to see the plots.", "failed");
      });
    };
    document.head.appendChild(script);
  }

  // ---------------------------------------------------------------- start

  if (!checkData()) return;
  new TrialTable(report.trials).setUp();
  root.dataset.table = "ready";
  performance.mark("hpcsweep:table-ready");
  var plots = preparePlots();
  if (plots.length) {
    // Start plotly.js after the table has been painted.
    requestAnimationFrame(function () { setTimeout(function () { loadPlotly(plots); }, 0); });
  }
})();
