"""The Threadline server: app factory, settings, auth, routes, services and events."""
