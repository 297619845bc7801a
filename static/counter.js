// Redraws the badge when the count changes (the number next to it is live by itself).
'use strict';
Statehub.on('/views/demo', () => {
  document.getElementById('badge').src = `/views/demo?badge&label=views&_=${Date.now()}`;
});
