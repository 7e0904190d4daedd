"""The offline API explorer: Swagger UI on the API's OpenAPI document, served by Callgate."""
