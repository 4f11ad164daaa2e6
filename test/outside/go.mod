module example.com/desoutside

go 1.26.0

require github.com/datavision/des v0.0.0

replace github.com/datavision/des => ../..
