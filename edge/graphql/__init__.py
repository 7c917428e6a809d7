"""GraphQL document handling: parsing with bounds, operation type, (later) analysis."""
