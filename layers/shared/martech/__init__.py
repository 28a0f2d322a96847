"""What the bundle's functions share: settings, HTTP, readers, reports and vendor clients."""
